"""The connector protocol: how Spojka talks to one external system.

How to write a connector
========================
A connector translates one system's API into a few calls. It does **not** keep sync state:
the sync engine owns cursors, overlap windows, de-duplication by (id, version), pagination
loops, retries, rate limits and checkpoints. A connector is small and stateless between calls.

1. Subclass :class:`Connector`, set ``kind`` (e.g. ``"redmine"``) and accept
   ``config`` (a plain dict from the connection settings; secrets already decrypted).
2. Declare the streams in :meth:`Connector.streams`. A :class:`Stream` names the canonical
   ``entity`` it carries, its ``primary_key``, the ``cursor_field`` the system can filter
   by (e.g. ``write_date``, ``updated_on``; ``None`` = only full listings), the
   ``version_field`` that changes on every edit (defaults to the cursor field), the
   ``page_size`` and whether deletes are visible (``supports_deletes``).
3. :meth:`read_page` returns one :class:`Page` of raw records (the system's own field names,
   JSON-able values) whose cursor field is ``>= since`` (the engine already subtracted the
   overlap window, so duplicates are expected and fine), plus an opaque ``next_token`` to
   continue, or ``None`` at the end. The engine persists the token with each page.
4. :meth:`write` creates (``external_id is None``) or updates a record and passes
   ``idempotency_key`` to the system when it supports one (header ``Idempotency-Key``, a
   reference field…). Return a :class:`WriteResult` with the id and, when the system
   reports it, the new version — the engine uses it to recognise its own echo.
5. :meth:`list_ids` lists every id of a stream (reconciliation finds deletes and drift).
6. :meth:`verify_webhook` checks a delivery's signature/timestamp and returns its events
   (or raises ``AuthError`` for a forged/stale one, ``ValidationError`` for a malformed
   one). :func:`verify_hmac_signature` implements the common ``t=<unix>,v1=<hex>`` scheme.
   A vendor whose set-up request must be answered in its own way (a handshake echoing a
   secret) overrides :meth:`webhook_handshake`; one that expects a particular answer to
   every delivery overrides :meth:`webhook_accepted`. Both return a :class:`WebhookReply`.
7. :meth:`read_one` returns the current record with an id (``None`` if there is none), in
   exactly the shape :meth:`read_page` gives it. The webhook inbox completes id-only events
   (``{"event_id", "stream", "id"}``) with it. The default pages through the stream;
   override it with the system's read-by-id call. :meth:`delete` removes a record on the
   streams declaring ``supports_deletes`` (only where deleting is safe in that system: a
   refusal of the system is a ``PermanentError`` naming why); a record already gone is a
   success with ``WriteResult.already_gone``.
8. :meth:`health` says whether the system answers.
9. Map every failure onto the error tree at the edge: :func:`classify_status` is the one
   HTTP status mapping (429 with ``Retry-After``, 5xx → ``TransientError``; 401 →
   ``AuthError``, 403 → ``ForbiddenError``, 404, 409, 400/422, other 4xx →
   ``PermanentError``), :func:`raise_for_status` applies it to an httpx response and
   :func:`transport_errors` turns timeouts and refused connections into ``TransientError``.
   :class:`spojka.connectors.saas.SaasClient` bundles all of it for a JSON API.
10. Register it in your package's ``pyproject.toml``::

       [project.entry-points."spojka.connectors"]
       redmine = "mypackage.redmine:RedmineConnector"

   After ``pip install mypackage`` the connection kind ``redmine`` is available.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

from spojka.core.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PermanentError,
    SpojkaError,
    TransientError,
    ValidationError,
)

CursorType = Literal["datetime", "int", "str"]
Record = dict[str, Any]


@dataclass(frozen=True)
class Stream:
    """A declared stream of one entity in one system."""

    name: str
    entity: str
    primary_key: str = "id"
    cursor_field: str | None = None
    cursor_type: CursorType = "datetime"
    version_field: str | None = None
    page_size: int = 500
    supports_deletes: bool = False
    writable: bool = True

    @property
    def version_key(self) -> str | None:
        return self.version_field or self.cursor_field


@dataclass
class Page:
    """One page of raw records and the token to the next page (None = done)."""

    records: list[Record]
    next_token: str | None = None


@dataclass(frozen=True)
class WriteResult:
    external_id: str
    version: str | None = None
    created: bool = False
    #: a delete found nothing to delete (already gone: a repeated or raced delete)
    already_gone: bool = False


@dataclass(frozen=True)
class WebhookEvent:
    """One change announced by a webhook delivery."""

    event_id: str
    stream: str
    external_id: str
    version: str | None = None
    record: Record | None = None
    deleted: bool = False
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class WebhookReply:
    """What the webhook receiver answers instead of its usual ``202`` with counts.

    ``remember`` holds connection settings to keep from the request (Asana's handshake
    secret): they are stored like any connection setting, credentials encrypted.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    remember: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""
    latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Connector:
    """Base class of every connector. Override what the system supports."""

    kind: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})

    # -- declaration ---------------------------------------------------------------
    def streams(self) -> Sequence[Stream]:
        raise NotImplementedError

    def stream(self, name: str) -> Stream:
        for stream in self.streams():
            if stream.name == name:
                return stream
        known = ", ".join(s.name for s in self.streams())
        raise NotFoundError(f"{self.kind}: no stream {name!r} (known: {known})")

    # -- reading -------------------------------------------------------------------
    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        """Records whose cursor field is >= ``since`` (None = from the start)."""
        raise NotImplementedError

    def list_ids(self, stream: Stream) -> Iterable[str]:
        """Every id currently in the stream (for reconciliation)."""
        page_token: str | None = None
        while True:
            page = self.read_page(stream, since=None, page_token=page_token)
            for record in page.records:
                yield str(record[stream.primary_key])
            if page.next_token is None:
                return
            page_token = page.next_token

    def read_one(self, stream: Stream, external_id: str) -> Record | None:
        """The current record with this id, or None when the system has no such record."""
        page_token: str | None = None
        while True:
            page = self.read_page(stream, since=None, page_token=page_token)
            for record in page.records:
                if str(record.get(stream.primary_key)) == external_id:
                    return record
            if page.next_token is None:
                return None
            page_token = page.next_token

    # -- writing -------------------------------------------------------------------
    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        raise PermanentError(f"{self.kind}: stream {stream.name!r} is read-only")

    def delete(self, stream: Stream, external_id: str, *, idempotency_key: str) -> WriteResult:
        """Delete (or archive, whichever the system offers) a record Spojka wrote or linked.

        Only called for streams declaring ``supports_deletes`` whose connection allows
        deletes. Deleting a record that is already gone is a success (idempotent).
        """
        raise PermanentError(f"{self.kind}: stream {stream.name!r} does not support deletes")

    def flush(self) -> None:
        """Make buffered writes durable; the engine calls it before committing a batch."""

    # -- webhooks ------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        raise AuthError(f"{self.kind}: this connector does not accept webhooks")

    def webhook_handshake(self, headers: Mapping[str, str], body: bytes) -> WebhookReply | None:
        """A vendor's set-up request, answered instead of verified and stored (Asana's
        ``X-Hook-Secret``); None for an ordinary delivery. Raise ``AuthError`` to refuse."""
        return None

    def webhook_accepted(self, *, stored: int, duplicates: int) -> WebhookReply | None:
        """The answer to a verified delivery where the vendor expects its own (Xero: ``200``
        with no body); None for Spojka's ``202`` with the counts."""
        return None

    # -- health --------------------------------------------------------------------
    def health(self) -> Health:
        return Health(ok=True, detail="no health check")

    def close(self) -> None:
        """Release files and HTTP clients."""


# -- helpers for connector authors ---------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def classify_status(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    body: str = "",
    system: str = "",
    what: str = "",
    message: str | None = None,
    wording: Mapping[int, str] | None = None,
    auth_statuses: frozenset[int] = frozenset({401}),
    detail: Mapping[str, Any] | None = None,
) -> SpojkaError | None:
    """The error an HTTP status means, or None for success: the one mapping of every HTTP
    connector.

    408/429/5xx → ``TransientError`` (``retry_after`` from ``Retry-After``); 401 (and the
    ``auth_statuses`` a system uses for bad credentials) → ``AuthError``; 403 →
    ``ForbiddenError``; 404 → ``NotFoundError``; 409 → ``ConflictError``; 400/422 →
    ``ValidationError``; any other 4xx → ``PermanentError``. ``what`` names the call
    (``GET /issues.json``), ``message`` is the system's own explanation (default: the start
    of ``body``), ``wording`` replaces the text after ``"<status> from <system>: "`` for a
    status (``{what}`` is filled in).
    """
    if status < 400:
        return None
    headers = headers or {}
    name = system or "the system"
    text = body[:300] if message is None else message
    info: dict[str, Any] = {"status": status, "message": text, **dict(detail or {})}
    on = f" on {what}" if what else ""

    def said(default: str) -> str:
        custom = (wording or {}).get(status)
        return f"{status} from {name}" + (f": {custom.format(what=what)}" if custom else default)

    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
        return TransientError(f"{status} from {name}{on}", retry_after=retry_after, detail=info)
    if status in auth_statuses:
        return AuthError(said(": credentials rejected"), detail=info)
    if status == 403:
        return ForbiddenError(said(f": not allowed to {what or 'do this'}"), detail=info)
    suffix = f": {text}" if text else ""
    if status == 404:
        return NotFoundError(said(f": {what or 'the resource'} not found"), detail=info)
    if status == 409:
        return ConflictError(said(f"{on}{suffix}"), detail=info)
    if status in (400, 422):
        return ValidationError(said(f"{on}{suffix}"), detail=info)
    return PermanentError(said(f"{on}{suffix}"), detail=info)


def raise_for_status(response: Any, *, system: str = "") -> None:
    """Raise the classified error for an httpx response that is not a success."""
    error = classify_status(
        response.status_code, headers=response.headers, body=response.text, system=system
    )
    if error is not None:
        raise error


@contextlib.contextmanager
def transport_errors(system: str = "") -> Iterator[None]:
    """Turn httpx/socket failures (timeouts, refused connections) into TransientError."""
    import httpx

    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientError(f"{system}: timeout ({type(exc).__name__})") from exc
    except (httpx.TransportError, ConnectionError, OSError) as exc:
        raise TransientError(f"{system}: connection failed: {exc}") from exc


def signatures_match(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures or secrets; any text (a header may carry
    non-ASCII characters, which ``hmac.compare_digest`` refuses for ``str``)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header by its lower-case name, whatever case the sender used ("" if absent)."""
    return next((v for k, v in headers.items() if k.lower() == name), "")


def verified_json(
    system: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    signature_header: str,
    expected: Callable[[bytes], str],
) -> Any:
    """A vendor's webhook body, parsed, once its signature header matches ``expected(body)``.

    Missing or wrong signature → AuthError; a body that is not JSON (also when computing the
    signature needs to parse it) → ValidationError; each message names the system.
    """
    given = header(headers, signature_header)
    if not given:
        raise AuthError(f"{system}: webhook signature missing")
    try:
        wanted = expected(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"{system}: webhook body is not JSON") from None
    if not signatures_match(wanted, given.strip()):
        raise AuthError(f"{system}: webhook signature does not match")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"{system}: webhook body is not JSON") from None


def sign_payload(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """Header value ``t=<unix>,v1=<hex hmac-sha256 of "t." + body>`` (sender side)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_hmac_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> int:
    """Check a ``t=…,v1=…`` signature; return the timestamp or raise AuthError."""
    if not header:
        raise AuthError("webhook signature missing")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        ts = int(parts["t"][0])
    except (KeyError, ValueError, IndexError):
        raise AuthError("webhook signature has no timestamp") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise AuthError("webhook timestamp outside the accepted window")
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(signatures_match(expected, given) for given in parts.get("v1", [])):
        raise AuthError("webhook signature does not match")
    return ts


def parse_generic_events(body: bytes) -> list[WebhookEvent]:
    """Parse Spojka's generic webhook body: one event object or ``{"events": [...]}``.

    Event: ``{"event_id", "stream", "id", "version"?, "record"?, "deleted"?}``.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("webhook body is not JSON") from None
    items = payload.get("events") if isinstance(payload, dict) else None
    if items is None:
        items = [payload]
    events: list[WebhookEvent] = []
    for item in items:
        if not isinstance(item, dict):
            raise ValidationError("webhook event must be an object")
        missing = [k for k in ("event_id", "stream", "id") if k not in item]
        if missing:
            raise ValidationError(f"webhook event lacks {', '.join(missing)}")
        record = item.get("record")
        if record is not None and not isinstance(record, dict):
            raise ValidationError("webhook event record must be an object")
        version = item.get("version")
        events.append(
            WebhookEvent(
                event_id=str(item["event_id"]),
                stream=str(item["stream"]),
                external_id=str(item["id"]),
                version=None if version is None else str(version),
                record=record,
                deleted=bool(item.get("deleted", False)),
            )
        )
    return events
