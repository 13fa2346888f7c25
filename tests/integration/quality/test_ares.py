"""ARES enrichment against a local HTTP server answering with the recorded response set."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from spojka.core.errors import TransientError
from spojka.quality.ares import AresClient, enrich
from spojka.quality.normalize import InvalidValue

RECORDED = Path(__file__).resolve().parents[2] / "data" / "quality" / "ares"
PREFIX = "/ekonomicke-subjekty-v-be/rest/ekonomicke-subjekty/"


class _Ares(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        ico = self.path.removeprefix(PREFIX)
        if ico == "00000019":
            self._answer(503, {"kod": "CHYBA", "popis": "Služba je dočasně nedostupná."})
            return
        recorded = RECORDED / f"{ico}.json"
        if self.path.startswith(PREFIX) and recorded.is_file():
            self._answer(200, json.loads(recorded.read_text(encoding="utf-8")))
        else:
            self._answer(404, json.loads((RECORDED / "not-found.json").read_text("utf-8")))

    def _answer(self, status: int, body: object) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def ares_url() -> Iterator[str]:
    _Ares.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ares)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ekonomicke-subjekty-v-be/rest"
    server.shutdown()
    server.server_close()


def test_enrich_fills_name_seat_and_dic_from_ico(ares_url: str, tmp_path: Path) -> None:
    with AresClient(cache_dir=tmp_path, base_url=ares_url) as client:
        result = enrich({"name": "", "ico": "255 96 641", "phone": "601123456"}, client)
    assert result.status == "enriched"
    assert result.values["name"] == "ACME Stavby s.r.o."
    assert result.values["dic"] == "CZ25596641"
    assert result.values["street"] == "Vinohradská 1511/23"
    assert (result.values["zip"], result.values["city"]) == ("120 00", "Praha")
    assert result.values["phone"] == "601123456"  # untouched
    assert result.company is not None and result.company.active


def test_answers_are_cached_including_not_found(ares_url: str, tmp_path: Path) -> None:
    with AresClient(cache_dir=tmp_path, base_url=ares_url) as client:
        assert client.lookup("25596641") is not None
        assert client.lookup("25596641") is not None
        assert client.lookup("12345679") is None  # valid IČO, unknown to ARES
        assert client.lookup("12345679") is None
    assert len(_Ares.hits) == 2


def test_dissolved_company_and_differing_dic(ares_url: str, tmp_path: Path) -> None:
    with AresClient(cache_dir=tmp_path, base_url=ares_url) as client:
        company = client.lookup("27082440")
        assert company is not None and not company.active
        assert company.dissolved == "2019-12-31"
        result = enrich({"name": "ACME", "ico": "25596641", "dic": "CZ99999999"}, client)
    assert result.differs["dic"] == ("CZ99999999", "CZ25596641")
    assert result.values["dic"] == "CZ99999999"  # a difference is reported, never overwritten


def test_enrichment_never_blocks_when_ares_is_down(tmp_path: Path) -> None:
    with AresClient(cache_dir=tmp_path, base_url="http://127.0.0.1:9/rest", timeout=1) as client:
        with pytest.raises(TransientError):
            client.lookup("25596641")
        result = enrich({"name": "ACME", "ico": "25596641"}, client)
    assert result.status == "unavailable"
    assert result.values == {"name": "ACME", "ico": "25596641"}


def test_503_is_transient_and_a_stale_cache_is_used(ares_url: str, tmp_path: Path) -> None:
    with AresClient(cache_dir=tmp_path, base_url=ares_url) as client:
        with pytest.raises(TransientError):
            client.lookup("00000019")
        assert client.lookup("25596641") is not None
    # an expired cache entry still answers when ARES is unreachable
    with AresClient(
        cache_dir=tmp_path, base_url="http://127.0.0.1:9/rest", ttl=timedelta(seconds=0), timeout=1
    ) as client:
        company = client.lookup("25596641")
    assert company is not None and company.name == "ACME Stavby s.r.o."


def test_malformed_ico(ares_url: str, tmp_path: Path) -> None:
    with AresClient(cache_dir=tmp_path, base_url=ares_url) as client:
        with pytest.raises(InvalidValue):
            client.lookup("25596642")
        assert enrich({"ico": "25596642"}, client).status == "invalid_ico"
        assert enrich({"name": "x"}, client).status == "no_ico"
    assert _Ares.hits == []


def test_ares_becomes_a_source_of_the_golden_record(
    ares_url: str, tmp_path: Path, sqlite_url: str
) -> None:
    from spojka.core.db import make_engine, session_factory, transaction, upgrade
    from spojka.quality import service
    from spojka.quality.models import QualityCluster

    upgrade(sqlite_url)
    sessions = session_factory(make_engine(sqlite_url))
    with transaction(sessions) as db, AresClient(cache_dir=tmp_path, base_url=ares_url) as ares:
        crm = service.ingest(
            db_session=db,
            entity="account",
            system="crm",
            external_id="C-1",
            values={"name": "ACME Stavby", "ico": "25596641"},
        )
        done = service.enrich_from_ares(db_session=db, record=crm.record, client=ares)
        assert done.status == "filed" and done.ingest is not None
        assert done.ingest.decision == "merge"
        cluster = db.get(QualityCluster, crm.cluster_id)
        assert cluster is not None
        assert cluster.golden["dic"] == "CZ25596641"
        assert cluster.lineage["dic"]["system"] == "ares"
        assert cluster.golden["name"] == "ACME Stavby"  # the CRM owns the name
        assert cluster.golden["zip"] == "120 00"

        old = service.ingest(
            db_session=db,
            entity="account",
            system="crm",
            external_id="C-2",
            values={"name": "Omega Tatry a.s.", "ico": "27082440"},
        )
        dissolved = service.enrich_from_ares(db_session=db, record=old.record, client=ares)
        assert dissolved.ingest is not None
        assert any(p["code"] == "company_dissolved" for p in dissolved.ingest.record.problems)
    with (
        transaction(sessions) as db,
        AresClient(
            cache_dir=tmp_path / "empty", base_url="http://127.0.0.1:9/rest", timeout=1
        ) as down,
    ):
        other = service.ingest(
            db_session=db,
            entity="account",
            system="crm",
            external_id="C-3",
            values={"name": "Nikdo s.r.o.", "ico": "12345679"},
        )
        assert (
            service.enrich_from_ares(db_session=db, record=other.record, client=down).status
            == "unavailable"
        )
