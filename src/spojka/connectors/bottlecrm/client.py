"""A small REST client for BottleCRM (``django-crm`` 1.35).

What BottleCRM does that a generic client gets wrong:

* every path needs its trailing slash (a POST without one answers 500, not a redirect);
* missing or bad credentials answer **403**, not 401;
* validation errors are ``400 {"error": true, "errors": {field: [messages]}}``;
* lists page with ``limit``/``offset`` but each list wraps its rows differently
  (``active_accounts.open_accounts``, ``opportunities``, ``results``…), see ``LISTINGS``;
* there is no "changed since" filter, so readers list everything (the sync engine
  de-duplicates) and rely on webhooks for prompt changes.

Errors are mapped at this edge: 429/5xx/timeouts/refused connections → ``TransientError``
(with ``retry_after`` from ``Retry-After``), 403 for bad credentials → ``AuthError``,
403 for a missing permission → ``ForbiddenError``, 404 → ``NotFoundError``, 400 →
``ValidationError`` carrying BottleCRM's field errors. Tokens and record contents are never
logged: a log line names the method, the path template, the status and the duration.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from spojka.connectors.base import classify_status
from spojka.core.errors import (
    AuthError,
    NotFoundError,
    PermanentError,
    SpojkaError,
    TransientError,
    ValidationError,
)
from spojka.core.logging import get_logger
from spojka.core.tracing import outgoing_headers

log = get_logger(__name__)

SYSTEM = "BottleCRM"
DEFAULT_PAGE_SIZE = 100
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# BottleCRM's 403 for a missing/unknown/expired credential (as opposed to "not allowed")
# says "Organization context is required. Please login again." or names the token.
_AUTH_PHRASES = (
    "login again",
    "not provided",
    "invalid token",
    "revoked or expired",
    "token is invalid",
    "not valid for any token",
    "inactive",
    "incorrect authentication",
)

Record = dict[str, Any]


def _path_template(path: str) -> str:
    """The path with ids replaced, safe to log."""
    return _UUID.sub("{id}", path)


def _flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """BottleCRM's ``errors`` (field → list, nested dicts, or a string) as field → messages."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten_errors(value, name))
    elif isinstance(errors, list | tuple):
        messages: list[str] = []
        for item in errors:
            if isinstance(item, Mapping):
                flat.update(_flatten_errors(item, prefix))
            else:
                messages.append(str(item))
        if messages:
            flat.setdefault(prefix or "non_field_errors", []).extend(messages)
    elif errors not in (None, ""):
        flat.setdefault(prefix or "non_field_errors", []).append(str(errors))
    return flat


def error_for_response(response: httpx.Response, *, method: str, path: str) -> SpojkaError:
    """The Spojka error an unsuccessful BottleCRM answer means."""
    status = response.status_code
    where = f"{method} {_path_template(path)}"
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    detail_text = ""
    if isinstance(body, Mapping):
        raw = body.get("detail") or body.get("message") or body.get("errors") or ""
        detail_text = raw if isinstance(raw, str) else ""
    message = detail_text or response.text[:300]
    detail: dict[str, Any] = {}
    if status in (400, 422):
        errors = body.get("errors") if isinstance(body, Mapping) else None
        field_errors = _flatten_errors(errors if errors is not None else detail_text)
        if not field_errors and isinstance(body, Mapping):
            field_errors = _flatten_errors({k: v for k, v in body.items() if k != "error"})
        message = "; ".join(f"{k}: {' '.join(v)}" for k, v in field_errors.items()) or message
        detail["field_errors"] = field_errors
    # BottleCRM answers 403, not 401, to a missing or expired token; its wording tells.
    bad_token = status == 403 and any(p in detail_text.lower() for p in _AUTH_PHRASES)
    error = classify_status(
        status,
        headers=response.headers,
        system=SYSTEM,
        what=where,
        message=message,
        wording={
            401: f"API token rejected ({detail_text or 'no detail'}); check the connection's token",
            403: (
                f"API token rejected ({detail_text}); check the connection's token"
                if bad_token
                else f"the token may not {where} ({detail_text or 'forbidden'})"
            ),
        },
        auth_statuses=frozenset({401, 403}) if bad_token else frozenset({401}),
        detail=detail,
    )
    if error is None:  # pragma: no cover - only called for failures
        raise AssertionError(f"{SYSTEM} answered {status}: not a failure")
    return error


# --- listings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """Where one kind of record is listed and how its page is unwrapped."""

    path: str
    extract: Callable[[Any], tuple[list[Record], int | None]]
    params: tuple[tuple[str, str], ...] = ()


def _rows(*keys: str, count: str | None = None) -> Callable[[Any], tuple[list[Record], int | None]]:
    """Unwrap ``body[k1][k2]…`` as the rows and ``body[...count]`` as the total."""

    def extract(body: Any) -> tuple[list[Record], int | None]:
        node = body
        for key in keys:
            node = node.get(key, []) if isinstance(node, Mapping) else []
        rows = [r for r in node if isinstance(r, dict)] if isinstance(node, list) else []
        total: int | None = None
        if count is not None:
            total_node: Any = body
            for key in count.split("."):
                total_node = total_node.get(key) if isinstance(total_node, Mapping) else None
            total = int(total_node) if isinstance(total_node, int) else None
        return rows, total

    return extract


# BottleCRM 1.35's list endpoints. Accounts come as active and inactive lists of the same
# page, so they are read as two listings filtered by ``is_active``.
LISTINGS: dict[str, tuple[Listing, ...]] = {
    "accounts": (
        Listing(
            "/api/accounts/",
            _rows("active_accounts", "open_accounts", count="active_accounts.open_accounts_count"),
            (("is_active", "true"),),
        ),
        Listing(
            "/api/accounts/",
            _rows(
                "closed_accounts", "close_accounts", count="closed_accounts.close_accounts_count"
            ),
            (("is_active", "false"),),
        ),
    ),
    "contacts": (Listing("/api/contacts/", _rows("contact_obj_list", count="contacts_count")),),
    "leads": (
        Listing("/api/leads/", _rows("open_leads", "open_leads", count="open_leads.leads_count")),
        Listing(
            "/api/leads/",
            _rows("close_leads", "close_leads", count="close_leads.leads_count"),
        ),
    ),
    "opportunities": (
        Listing("/api/opportunities/", _rows("opportunities", count="opportunities_count")),
    ),
    "tasks": (Listing("/api/tasks/", _rows("tasks", count="tasks_count")),),
    "tickets": (Listing("/api/cases/", _rows("cases", count="cases_count")),),
    "activities": (Listing("/api/activities/", _rows("activities", count="count")),),
}

WRITE_PATHS: dict[str, str] = {
    "accounts": "/api/accounts/",
    "contacts": "/api/contacts/",
    "leads": "/api/leads/",
    "opportunities": "/api/opportunities/",
    "tasks": "/api/tasks/",
    "tickets": "/api/cases/",
}


class BottleCRMClient:
    """Synchronous BottleCRM REST client. Thread-compatible, not thread-safe."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        read_retries: int = 2,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise AuthError(f"{SYSTEM}: no API token configured")
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/api"):
            self.base_url = self.base_url[: -len("/api")]
        self._token = token
        self.read_retries = read_retries
        self.max_retry_wait = max_retry_wait
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "spojka-bottlecrm/1"},
        )

    def __repr__(self) -> str:  # never show the token
        return f"BottleCRMClient(base_url={self.base_url!r}, token=***)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BottleCRMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One call; returns the decoded JSON body (or None) or raises a Spojka error.

        Reads (GET) are retried ``read_retries`` times on transient failures, waiting
        ``Retry-After`` (capped); writes are never retried here: the caller decides.
        """
        if not path.startswith("/"):
            path = "/" + path
        if not path.split("?", 1)[0].endswith("/"):
            path += "/"  # BottleCRM's routes all end in a slash; POST without one is a 500
        method = method.upper()
        attempts = 1 + (self.read_retries if method == "GET" else 0)
        for attempt in range(1, attempts + 1):
            try:
                return self._once(method, path, params=params, json=json)
            except TransientError as exc:
                if attempt >= attempts:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (attempt - 1)
                time.sleep(min(wait, self.max_retry_wait))
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, *, params: Mapping[str, Any] | None, json: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", **outgoing_headers()}
        started = time.perf_counter()
        try:
            response = self._http.request(method, path, params=params, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{SYSTEM} did not answer {method} {_path_template(path)} in time"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{SYSTEM} at {self.base_url} is unreachable ({type(exc).__name__})"
            ) from exc
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.debug(
            "bottlecrm.request",
            method=method,
            path=_path_template(path),
            status=response.status_code,
            ms=elapsed_ms,
        )
        if response.status_code >= 400:
            error = error_for_response(response, method=method, path=path)
            log.info(
                "bottlecrm.error",
                method=method,
                path=_path_template(path),
                status=response.status_code,
                error=type(error).__name__,
            )
            raise error
        if not response.content:
            return None
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(
                f"{SYSTEM} answered {method} {_path_template(path)} with a non-JSON body"
            ) from exc
        if isinstance(body, Mapping) and body.get("error") is True:
            # Some views answer 200 with {"error": true, ...}: still a rejection.
            raise ValidationError(
                f"{SYSTEM} rejected {method} {_path_template(path)}: "
                f"{body.get('message') or body.get('errors')}",
                detail={
                    "status": response.status_code,
                    "field_errors": _flatten_errors(body.get("errors") or body.get("message")),
                },
            )
        return body

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        return self.request("POST", path, json=dict(payload))

    def patch(self, path: str, payload: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, json=dict(payload))

    def put(self, path: str, payload: Mapping[str, Any]) -> Any:
        return self.request("PUT", path, json=dict(payload))

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    # -- listings ------------------------------------------------------------------
    def list_page(
        self, kind: str, *, part: int = 0, offset: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> tuple[list[Record], bool]:
        """One page of a listing: ``(rows, more)``. ``part`` picks e.g. inactive accounts."""
        listing = self._listing(kind)[part]
        params: dict[str, Any] = dict(listing.params)
        params.update(limit=limit, offset=offset)
        body = self.get(listing.path, **params)
        rows, total = listing.extract(body)
        more = (offset + len(rows) < total) if total is not None else len(rows) >= limit
        return rows, more and bool(rows)

    def parts(self, kind: str) -> int:
        return len(self._listing(kind))

    def iter_all(self, kind: str, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Record]:
        """Every record of a kind, page by page (may repeat one if the list shifts)."""
        for part in range(self.parts(kind)):
            offset = 0
            while True:
                rows, more = self.list_page(kind, part=part, offset=offset, limit=page_size)
                yield from rows
                if not more:
                    break
                offset += len(rows)

    def find(self, kind: str, filters: Mapping[str, str], *, limit: int = 50) -> list[Record]:
        """The first ``limit`` records of a kind matching BottleCRM's list filters.

        Unknown filters are silently ignored by BottleCRM, so callers must check the rows.
        """
        found: list[Record] = []
        listings = self._listing(kind)
        if len({listing.path for listing in listings}) == 1:
            # Parts of one endpoint (active/inactive accounts, open/closed leads) come in
            # the same answer when unfiltered: one request reads them all.
            body = self.get(listings[0].path, **{**filters, "limit": limit, "offset": 0})
            for listing in listings:
                found.extend(listing.extract(body)[0])
            return found
        for listing in listings:
            params: dict[str, Any] = dict(listing.params)
            params.update(filters, limit=limit, offset=0)
            rows, _ = listing.extract(self.get(listing.path, **params))
            found.extend(rows)
        return found

    @staticmethod
    def _listing(kind: str) -> tuple[Listing, ...]:
        try:
            return LISTINGS[kind]
        except KeyError:
            raise NotFoundError(f"{SYSTEM}: nothing lists {kind!r}") from None

    # -- records -------------------------------------------------------------------
    def create(self, kind: str, payload: Mapping[str, Any]) -> str:
        """Create a record; return its id."""
        body = self.post(_write_path(kind), payload)
        record_id = _created_id(body)
        if record_id is None and kind == "tasks":
            # BottleCRM answers a task create with a message only; its activity feed names
            # the new task.
            record_id = self._recent_created_id("Task", str(payload.get("title", "")))
        if record_id is None:
            raise PermanentError(f"{SYSTEM}: creating a {kind} record returned no id")
        return record_id

    def _recent_created_id(self, entity_type: str, name: str) -> str | None:
        body = self.get("/api/activities/", entity_type=entity_type, limit=20)
        for activity in body.get("activities", []) if isinstance(body, Mapping) else []:
            if activity.get("action") == "CREATE" and activity.get("entity_name") == name:
                return str(activity["entity_id"])
        return None

    def update(self, kind: str, record_id: str, payload: Mapping[str, Any]) -> Any:
        """Partial update (PATCH) of one record."""
        return self.patch(f"{_write_path(kind)}{record_id}/", payload)

    def fetch(self, kind: str, record_id: str) -> Record:
        """One record as BottleCRM shows it in its detail view."""
        body = self.get(f"{_write_path(kind)}{record_id}/")
        return _detail_record(kind, body)

    def remove(self, kind: str, record_id: str) -> None:
        self.delete(f"{_write_path(kind)}{record_id}/")

    def add_comment(self, kind: str, record_id: str, text: str) -> None:
        """A note (comment) on an account, contact, opportunity, lead, task or ticket."""
        self.post(f"{_write_path(kind)}{record_id}/", {"comment": text})

    def comments(self, kind: str, record_id: str) -> list[Record]:
        """The notes on one record, newest first."""
        body = self.get(f"{_write_path(kind)}{record_id}/")
        rows = body.get("comments", []) if isinstance(body, Mapping) else []
        return [r for r in rows if isinstance(r, dict)]

    def activities(self, *, entity_type: str | None = None, limit: int = 50) -> list[Record]:
        """BottleCRM's activity feed (newest first, at most 50): a change backstop."""
        params: dict[str, Any] = {"limit": min(limit, 50)}
        if entity_type:
            params["entity_type"] = entity_type
        body = self.get("/api/activities/", **params)
        rows = body.get("activities", []) if isinstance(body, Mapping) else []
        return [r for r in rows if isinstance(r, dict)]

    def custom_field_keys(self, target_model: str) -> set[str]:
        """Keys of the active custom fields of a model (``Account``, ``Contact``, …)."""
        body = self.get("/api/custom-fields/", target_model=target_model)
        rows = body.get("definitions", []) if isinstance(body, Mapping) else []
        return {
            str(r["key"])
            for r in rows
            if isinstance(r, dict)
            and r.get("is_active", True)
            and r.get("target_model")
            in (
                None,
                target_model,
            )
        }

    def pipelines(self) -> list[Record]:
        body = self.get("/api/opportunities/pipelines/")
        rows = body.get("pipelines", body) if isinstance(body, Mapping) else body
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def whoami(self) -> Record:
        """The profile behind the token: a cheap check of reachability and credentials."""
        body = self.get("/api/profile/")
        return dict(body) if isinstance(body, Mapping) else {"profile": body}


def _write_path(kind: str) -> str:
    try:
        return WRITE_PATHS[kind]
    except KeyError:
        raise PermanentError(f"{SYSTEM}: cannot write {kind!r}") from None


def _created_id(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    for key in ("id", "pk"):
        if body.get(key):
            return str(body[key])
    for value in body.values():
        if isinstance(value, Mapping) and value.get("id"):
            return str(value["id"])
    return None


_DETAIL_KEYS = {
    "accounts": "account_obj",
    "contacts": "contact_obj",
    "leads": "lead_obj",
    "opportunities": "opportunity_obj",
    "tasks": "task_obj",
    "tickets": "cases_obj",
}


def _detail_record(kind: str, body: Any) -> Record:
    if not isinstance(body, Mapping):
        raise PermanentError(f"{SYSTEM}: unexpected answer for one {kind} record")
    key = _DETAIL_KEYS.get(kind)
    if key and isinstance(body.get(key), Mapping):
        return dict(body[key])
    return dict(body)
