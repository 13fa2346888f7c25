"""ARES (the Czech register of economic subjects): legal name, seat, DIČ and status by IČO.

Enrichment is optional and never blocks: ``enrich`` returns the record unchanged (and says
why) when ARES is slow, down or does not know the IČO. Answers are cached on disk, the
404s too, so a sync run asks ARES once per company per ``ttl``; a stale cached answer is
used when ARES is unreachable.

The public endpoint is ``GET {base}/ekonomicke-subjekty/{ico}`` returning JSON with
``ico``, ``obchodniJmeno``, ``dic``, ``pravniForma``, ``datumVzniku``, ``datumZaniku`` and
``sidlo`` (``nazevUlice``, ``cisloDomovni``, ``cisloOrientacni``, ``nazevObce``,
``nazevCastiObce``, ``psc``, ``kodStatu``, ``textovaAdresa``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from spojka.core.errors import PermanentError, TransientError
from spojka.core.logging import get_logger
from spojka.core.tracing import outgoing_headers
from spojka.quality.normalize import InvalidValue, normalize_ico, normalize_psc

DEFAULT_BASE_URL = "https://ares.gov.cz/ekonomicke-subjekty-v-be/rest"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AresCompany:
    """What ARES says about one IČO, in canonical field names."""

    ico: str
    name: str
    dic: str | None
    legal_form_code: str | None
    street: str | None
    city: str | None
    city_part: str | None
    zip: str | None
    country: str
    address: str | None
    established: str | None
    dissolved: str | None

    @property
    def active(self) -> bool:
        return self.dissolved is None

    def as_values(self) -> dict[str, str]:
        """The canonical account fields ARES can fill."""
        values = {
            "name": self.name,
            "ico": self.ico,
            "dic": self.dic,
            "street": self.street,
            "city": self.city,
            "zip": self.zip,
            "country": self.country,
        }
        return {k: v for k, v in values.items() if v}


def parse_subject(body: Mapping[str, Any]) -> AresCompany:
    """Map one ARES ``EkonomickySubjekt`` JSON object onto ``AresCompany``."""
    seat: Mapping[str, Any] = body.get("sidlo") or {}
    number = str(seat.get("cisloDomovni") or "")
    orientation = seat.get("cisloOrientacni")
    if orientation:
        number = f"{number}/{orientation}{seat.get('cisloOrientacniPismeno') or ''}"
    street_name = seat.get("nazevUlice") or seat.get("nazevCastiObce")
    street = " ".join(p for p in (street_name, number) if p) or None
    psc = seat.get("psc")
    zip_code = None
    if psc:
        try:
            zip_code = normalize_psc(str(psc).zfill(5))
        except InvalidValue:
            zip_code = None
    return AresCompany(
        ico=str(body.get("ico") or "").zfill(8),
        name=str(body.get("obchodniJmeno") or "").strip(),
        dic=body.get("dic") or None,
        legal_form_code=body.get("pravniForma") or None,
        street=street,
        city=seat.get("nazevObce") or None,
        city_part=seat.get("nazevCastiObce") or None,
        zip=zip_code,
        country=seat.get("kodStatu") or "CZ",
        address=seat.get("textovaAdresa") or None,
        established=body.get("datumVzniku") or None,
        dissolved=body.get("datumZaniku") or None,
    )


class AresClient:
    """A small, cached ARES client (httpx)."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        base_url: str = DEFAULT_BASE_URL,
        ttl: timedelta = timedelta(days=7),
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AresClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- cache

    def _cache_path(self, ico: str) -> Path:
        return self.cache_dir / f"{ico}.json"

    def _cached(self, ico: str) -> dict[str, Any] | None:
        path = self._cache_path(ico)
        if not path.is_file():
            return None
        try:
            entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry

    def _store(self, ico: str, status: int, body: Any) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        entry = {"fetched_at": datetime.now(UTC).isoformat(), "status": status, "body": body}
        tmp = self._cache_path(ico).with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self._cache_path(ico))

    def _fresh(self, entry: Mapping[str, Any]) -> bool:
        fetched = datetime.fromisoformat(str(entry["fetched_at"]))
        return datetime.now(UTC) - fetched < self.ttl

    @staticmethod
    def _from_entry(entry: Mapping[str, Any]) -> AresCompany | None:
        return parse_subject(entry["body"]) if entry["status"] == 200 else None

    # -- lookups

    def lookup(self, ico: str) -> AresCompany | None:
        """The company registered under ``ico``, or None when ARES does not know it.

        Raises ``InvalidValue`` for a malformed IČO and ``TransientError`` when ARES cannot
        be reached and nothing is cached.
        """
        ico = normalize_ico(ico)
        cached = self._cached(ico)
        if cached is not None and self._fresh(cached):
            return self._from_entry(cached)
        try:
            status, body = self._fetch(ico)
        except TransientError:
            if cached is not None:  # stale beats nothing: the register changes slowly
                log.info("ares.stale_cache_used", ico=ico)
                return self._from_entry(cached)
            raise
        self._store(ico, status, body)
        return parse_subject(body) if status == 200 else None

    def _fetch(self, ico: str) -> tuple[int, Any]:
        url = f"{self.base_url}/ekonomicke-subjekty/{ico}"
        headers = {"Accept": "application/json", **outgoing_headers()}
        started = time.perf_counter()
        try:
            response = self._http.get(url, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"ARES did not answer in time ({exc})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"ARES is not reachable ({exc})") from None
        log.info(
            "ares.lookup",
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if response.status_code == 404:
            return 404, None
        if response.status_code == 429 or response.status_code >= 500:
            retry = response.headers.get("Retry-After")
            raise TransientError(
                f"ARES answered {response.status_code}",
                retry_after=float(retry) if retry and retry.isdigit() else None,
            )
        if response.status_code != 200:
            raise PermanentError(f"ARES refused the lookup of {ico}: {response.status_code}")
        try:
            return 200, response.json()
        except ValueError:
            raise TransientError("ARES answered with something that is not JSON") from None


@dataclass(slots=True)
class Enrichment:
    """The record after enrichment and what changed; ``status`` says why nothing did."""

    values: dict[str, str | None]
    status: str  # enriched | unchanged | not_found | invalid_ico | no_ico | unavailable
    filled: dict[str, str] = field(default_factory=dict)
    differs: dict[str, tuple[str, str]] = field(default_factory=dict)
    company: AresCompany | None = None


def enrich(values: Mapping[str, str | None], client: AresClient) -> Enrichment:
    """Fill empty account fields from ARES; report fields where the record and ARES differ.

    Never raises for ARES trouble: a sync must not wait for the register.
    """
    current = dict(values)
    raw_ico = current.get("ico")
    if not raw_ico:
        return Enrichment(current, "no_ico")
    try:
        company = client.lookup(str(raw_ico))
    except InvalidValue:
        return Enrichment(current, "invalid_ico")
    except (TransientError, PermanentError) as exc:
        log.warning("ares.unavailable", reason=exc.message)
        return Enrichment(current, "unavailable")
    if company is None:
        return Enrichment(current, "not_found")
    filled: dict[str, str] = {}
    differs: dict[str, tuple[str, str]] = {}
    for name, value in company.as_values().items():
        if not current.get(name):
            current[name] = value
            filled[name] = value
        elif name in {"dic", "ico"} and str(current[name]).replace(" ", "").upper() != value:
            differs[name] = (str(current[name]), value)
    return Enrichment(current, "enriched" if filled else "unchanged", filled, differs, company)
