"""Xero Accounting connector: contacts, invoices, payments, purchase orders.

Authentication: OAuth 2.0 bearer tokens for one tenant (header ``xero-tenant-id``). Xero
rotates refresh tokens: every refresh answers a *new* refresh token and the old one stops
working, so the new one is stored (``token_file`` or the :class:`TokenStore` given) before
it is used. A 401 from the API refreshes once and repeats the call.

Pagination as Xero does it: ``page=1,2,…`` of up to 100 records, the end is a short page;
change capture by the ``If-Modified-Since`` header (ISO 8601, as the document declares)
against ``UpdatedDateUTC``.

Webhooks: header ``x-xero-signature`` = base64 HMAC-SHA256 of the raw body with the webhook
key. Xero expects ``200`` with an empty body for a good signature and ``401`` for a bad one,
for its "intent to receive" check (signed deliveries with no events) as for real ones, so
the receiver answers Xero that way. Xero's body carries no delivery timestamp; events whose
``eventDateUtc`` is older than the tolerance (a replay) are refused.

Contract-tested against Xero's published OpenAPI document served by Prism, not against the
live Xero API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx

from spojka.connectors.base import (
    Connector,
    Health,
    Page,
    Stream,
    WebhookEvent,
    WebhookReply,
    WriteResult,
    verified_json,
)
from spojka.connectors.saas import saas_client
from spojka.core.errors import AuthError, SpojkaError, ValidationError

XERO_PAGE = 100
TOKEN_URL = "https://identity.xero.com/connect/token"

STREAMS: tuple[Stream, ...] = (
    Stream(
        name="contacts",
        entity="Account",
        primary_key="ContactID",
        cursor_field="UpdatedDateUTC",
        page_size=XERO_PAGE,
    ),
    Stream(
        name="invoices",
        entity="Invoice",
        primary_key="InvoiceID",
        cursor_field="UpdatedDateUTC",
        page_size=XERO_PAGE,
    ),
    Stream(
        name="payments",
        entity="Payment",
        primary_key="PaymentID",
        cursor_field="UpdatedDateUTC",
        page_size=XERO_PAGE,
    ),
    Stream(
        name="purchase_orders",
        entity="Order",
        primary_key="PurchaseOrderID",
        cursor_field="UpdatedDateUTC",
        page_size=XERO_PAGE,
    ),
)

# stream → (path, key of the list in the answer, id field)
_RESOURCES = {
    "contacts": ("/Contacts", "Contacts", "ContactID"),
    "invoices": ("/Invoices", "Invoices", "InvoiceID"),
    "payments": ("/Payments", "Payments", "PaymentID"),
    "purchase_orders": ("/PurchaseOrders", "PurchaseOrders", "PurchaseOrderID"),
}
_EVENT_STREAMS = {"CONTACT": "contacts", "INVOICE": "invoices"}
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def xero_date(value: Any) -> Any:
    """Xero's ``/Date(1573755038314+0000)/`` → ISO 8601 (other values unchanged)."""
    if isinstance(value, str):
        match = _MS_DATE.fullmatch(value)
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).isoformat()
    return value


def sign_xero_webhook(key: str, body: bytes) -> str:
    """``x-xero-signature`` value Xero sends (sender side, for tests and tools)."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


class TokenStore(Protocol):
    def load(self) -> dict[str, Any]: ...
    def save(self, tokens: Mapping[str, Any]) -> None: ...


class MemoryTokenStore:
    def __init__(self, tokens: Mapping[str, Any] | None = None) -> None:
        self._tokens = dict(tokens or {})

    def load(self) -> dict[str, Any]:
        return dict(self._tokens)

    def save(self, tokens: Mapping[str, Any]) -> None:
        self._tokens = dict(tokens)


class FileTokenStore:
    """Tokens in a JSON file (mode 0600), replaced atomically."""

    def __init__(self, path: str | Path, initial: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists() and initial:
            self.save(initial)

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text())
        return data if isinstance(data, dict) else {}

    def save(self, tokens: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(tokens)))
        tmp.chmod(0o600)
        tmp.replace(self.path)


class OAuthRefresher:
    """Access tokens from a rotating refresh token (RFC 6749 §6), stored before use."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        store: TokenStore,
        system: str,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.store = store
        self.system = system
        self._transport = transport
        self._lock = threading.Lock()

    def access_token(self, *, force: bool = False) -> str:
        with self._lock:
            tokens = self.store.load()
            fresh = float(tokens.get("expires_at") or 0) - 60 > time.time()
            if tokens.get("access_token") and fresh and not force:
                return str(tokens["access_token"])
            return self._refresh(tokens)

    def _refresh(self, tokens: Mapping[str, Any]) -> str:
        refresh = tokens.get("refresh_token")
        if not refresh:
            raise AuthError(f"{self.system}: no refresh token; authorise the connection again")
        try:
            with httpx.Client(transport=self._transport, timeout=30.0) as http:
                response = http.post(
                    self.token_url,
                    data={"grant_type": "refresh_token", "refresh_token": str(refresh)},
                    auth=(self.client_id, self.client_secret),
                )
        except httpx.TransportError as exc:
            raise SpojkaError(f"{self.system}: token endpoint unreachable") from exc
        if response.status_code in (400, 401):
            # invalid_grant: the refresh token was used already or revoked.
            raise AuthError(
                f"{response.status_code} from {self.system}'s token endpoint: refresh token "
                "rejected; authorise the connection again"
            )
        if response.status_code >= 300:
            raise SpojkaError(f"{self.system}: token endpoint answered {response.status_code}")
        body = response.json()
        saved = {
            "access_token": body["access_token"],
            "refresh_token": body.get("refresh_token") or refresh,
            "expires_at": time.time() + float(body.get("expires_in") or 1800),
        }
        self.store.save(saved)  # before use: the old refresh token is dead now
        return str(saved["access_token"])


class XeroConnector(Connector):
    kind: ClassVar[str] = "xero"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        token_transport: httpx.BaseTransport | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        super().__init__(config)
        initial = {"refresh_token": self.config.get("refresh_token")}
        if token_store is None:
            if self.config.get("token_file"):
                token_store = FileTokenStore(str(self.config["token_file"]), initial)
            else:
                token_store = MemoryTokenStore(initial)
        self.tokens = OAuthRefresher(
            token_url=str(self.config.get("token_url") or TOKEN_URL),
            client_id=str(self.config.get("client_id") or ""),
            client_secret=str(self.config.get("client_secret") or ""),
            store=token_store,
            system="Xero",
            transport=token_transport,
        )

        self.client = saas_client(
            self.config,
            kind="xero",
            system="Xero",
            required=("tenant_id", "client_id", "client_secret"),
            default_url="https://api.xero.com/api.xro/2.0",
            auth_headers=lambda: {"Authorization": f"Bearer {self.tokens.access_token()}"},
            transport=transport,
            headers={"xero-tenant-id": str(self.config.get("tenant_id") or "")},
        )
        self.webhook_key = str(self.config.get("webhook_key") or "")
        self.webhook_tolerance_s = float(self.config.get("webhook_tolerance_s") or 86400.0)

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.client.request(method, path, **kwargs)
        except AuthError as exc:
            if "401" not in str(exc):
                raise
            self.tokens.access_token(force=True)  # expired early or revoked: refresh once
            return self.client.request(method, path, **kwargs)

    # -- reading ---------------------------------------------------------------------------

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        if stream.name not in _RESOURCES:
            raise ValidationError(f"xero: unknown stream {stream.name!r}")
        path, key, _ = _RESOURCES[stream.name]
        page = int(page_token or 1)
        headers: dict[str, str] = {}
        if since:
            when = datetime.fromisoformat(since.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            # Xero's document declares the header as an ISO 8601 date-time, not an HTTP date.
            headers["If-Modified-Since"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = self._call(
            "GET", path, params={"page": page, "order": "UpdatedDateUTC ASC"}, headers=headers
        )
        items = [i for i in (body or {}).get(key) or [] if isinstance(i, dict)]
        records = [self._shape(stream.name, i) for i in items]
        return Page(records=records, next_token=str(page + 1) if len(items) >= XERO_PAGE else None)

    def _shape(self, stream: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        record = {k: xero_date(v) for k, v in raw.items()}
        _, _, id_field = _RESOURCES[stream]
        record[id_field] = str(raw.get(id_field) or "")
        contact = raw.get("Contact")
        if isinstance(contact, dict):
            record["ContactID"] = contact.get("ContactID")
        invoice = raw.get("Invoice")
        if isinstance(invoice, dict):
            record["InvoiceID"] = invoice.get("InvoiceID")
        if "Date" in record and isinstance(record["Date"], str):
            record["Date"] = record["Date"][:10]
        if "DueDate" in record and isinstance(record["DueDate"], str):
            record["DueDate"] = record["DueDate"][:10]
        return record

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        if stream.name not in _RESOURCES:
            raise ValidationError(f"xero: unknown stream {stream.name!r}")
        path, key, id_field = _RESOURCES[stream.name]
        item = {k: v for k, v in record.items() if v is not None}
        if external_id is not None:
            item[id_field] = external_id
        # Xero de-duplicates retried POST/PUTs by the Idempotency-Key header.
        body = self._call(
            "POST" if external_id else "PUT",
            path,
            json={key: [item]},
            headers={"Idempotency-Key": idempotency_key[:128]},
        )
        saved = ((body or {}).get(key) or [{}])[0]
        saved = saved if isinstance(saved, dict) else {}
        return WriteResult(
            external_id=str(saved.get(id_field) or external_id or ""),
            version=xero_date(saved.get("UpdatedDateUTC")),
            created=external_id is None,
        )

    # -- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        key = self.webhook_key
        if not key:
            raise AuthError("xero: no webhook_key configured; deliveries cannot be trusted")
        payload = verified_json(
            "xero",
            headers,
            body,
            signature_header="x-xero-signature",
            expected=lambda raw: sign_xero_webhook(key, raw),
        )
        events: list[WebhookEvent] = []
        for item in payload.get("events") or [] if isinstance(payload, dict) else []:
            if not isinstance(item, dict) or not item.get("resourceId"):
                raise ValidationError("xero: webhook event lacks resourceId")
            stream = _EVENT_STREAMS.get(str(item.get("eventCategory")))
            if stream is None:
                continue
            when_text = str(item.get("eventDateUtc") or "")
            try:
                when = datetime.fromisoformat(when_text.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError("xero: webhook event has no eventDateUtc") from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            if abs(time.time() - when.timestamp()) > self.webhook_tolerance_s:
                raise AuthError("xero: webhook event outside the accepted window (a replay?)")
            events.append(
                WebhookEvent(
                    event_id=f"{item['resourceId']}:{item.get('eventType')}:{when_text}",
                    stream=stream,
                    external_id=str(item["resourceId"]),
                    occurred_at=when,
                )
            )
        return events

    def webhook_accepted(self, *, stored: int, duplicates: int) -> WebhookReply | None:
        return WebhookReply(status=200)  # Xero wants 200 and no body

    # -- health ----------------------------------------------------------------------------

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            body = self._call("GET", "/Organisation") or {}
        except SpojkaError as exc:
            return Health(ok=False, detail=str(exc))
        orgs = body.get("Organisations") or [{}]
        name = orgs[0].get("Name", "?") if isinstance(orgs[0], dict) else "?"
        return Health(
            ok=True,
            detail=f"Xero answers; organisation {name}",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        self.client.close()
