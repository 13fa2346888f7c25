"""Apideck CRM connector: companies, contacts, leads, opportunities, activities.

One unified API in front of HubSpot, Salesforce, Pipedrive, Zoho and others; the CRM behind
it is chosen by ``service_id`` (header ``x-apideck-service-id``) or the consumer's default.
Authentication: ``Authorization: Bearer <API key>`` plus ``x-apideck-app-id`` and
``x-apideck-consumer-id`` (the customer whose CRM is connected).

Pagination as Apideck does it: ``limit`` (≤ 200) and the opaque ``cursor`` from
``meta.cursors.next``. Only activities accept ``filter[updated_since]``; the other streams
are full listings (the engine de-duplicates by version = ``updated_at``).

Webhooks: ``x-apideck-signature`` = HMAC-SHA256 keyed with the API key over the body with
its object keys sorted recursively (base64). Events older than the tolerance (by
``occurred_at``) are refused as replays.

Contract-tested against Apideck's published OpenAPI document served by Prism, not against
the live Apideck service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from spojka.connectors.base import (
    Connector,
    Health,
    Page,
    Stream,
    WebhookEvent,
    WriteResult,
    verified_json,
)
from spojka.connectors.saas import saas_client
from spojka.core.errors import AuthError, SpojkaError, ValidationError

MAX_PAGE = 200

STREAMS: tuple[Stream, ...] = (
    Stream(name="companies", entity="Account", version_field="updated_at", page_size=MAX_PAGE),
    Stream(name="contacts", entity="Contact", version_field="updated_at", page_size=MAX_PAGE),
    Stream(name="leads", entity="Opportunity", version_field="updated_at", page_size=MAX_PAGE),
    Stream(
        name="opportunities", entity="Opportunity", version_field="updated_at", page_size=MAX_PAGE
    ),
    Stream(
        name="activities",
        entity="Activity",
        cursor_field="updated_at",
        page_size=MAX_PAGE,
    ),
)
_PATHS = {s.name: f"/crm/{s.name}" for s in STREAMS}
# webhook event type prefix → stream, e.g. "crm.company.updated"
_EVENT_STREAMS = {
    "crm.company": "companies",
    "crm.contact": "contacts",
    "crm.lead": "leads",
    "crm.opportunity": "opportunities",
    "crm.activity": "activities",
}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def sign_apideck_webhook(api_key: str, body: bytes) -> str:
    """``x-apideck-signature`` for a body (keys sorted recursively, compact JSON)."""
    canonical = json.dumps(_sorted(json.loads(body)), separators=(",", ":"), ensure_ascii=False)
    mac = hmac.new(api_key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _first(items: Any, key: str) -> Any:
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get(key):
                return item[key]
    return None


class ApideckConnector(Connector):
    kind: ClassVar[str] = "apideck"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(config)
        self.api_key = str(self.config.get("api_key") or "")
        headers = {
            "x-apideck-app-id": str(self.config.get("app_id") or ""),
            "x-apideck-consumer-id": str(self.config.get("consumer_id") or ""),
        }
        if self.config.get("service_id"):
            headers["x-apideck-service-id"] = str(self.config["service_id"])
        bearer = {"Authorization": f"Bearer {self.api_key}"}
        self.client = saas_client(
            self.config,
            kind="apideck",
            system="Apideck",
            required=("api_key", "app_id", "consumer_id"),
            default_url="https://unify.apideck.com",
            auth_headers=lambda: bearer,
            transport=transport,
            headers=headers,
        )
        self.page_size = min(int(self.config.get("page_size") or MAX_PAGE), MAX_PAGE)
        self.webhook_tolerance_s = float(self.config.get("webhook_tolerance_s") or 3600.0)

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    # -- reading ---------------------------------------------------------------------------

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        if stream.name not in _PATHS:
            raise ValidationError(f"apideck: unknown stream {stream.name!r}")
        params: dict[str, Any] = {"limit": self.page_size}
        if page_token:
            params["cursor"] = page_token
        if since and stream.cursor_field:
            params["filter[updated_since]"] = since
        body = self.client.request("GET", _PATHS[stream.name], params=params) or {}
        items = [i for i in body.get("data") or [] if isinstance(i, dict)]
        cursors = (body.get("meta") or {}).get("cursors") or {}
        following = cursors.get("next") if isinstance(cursors, dict) else None
        return Page(
            records=[self._shape(i) for i in items],
            next_token=str(following) if following and items else None,
        )

    @staticmethod
    def _shape(raw: Mapping[str, Any]) -> dict[str, Any]:
        """Unified fields kept; first e-mail/phone/website flattened for mappings."""
        record = {k: v for k, v in raw.items() if k not in ("custom_mappings",)}
        record["id"] = str(raw.get("id") or "")
        record["email"] = _first(raw.get("emails"), "email")
        record["phone"] = _first(raw.get("phone_numbers"), "number")
        record["website"] = _first(raw.get("websites"), "url")
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
        if stream.name not in _PATHS:
            raise ValidationError(f"apideck: unknown stream {stream.name!r}")
        body = {k: v for k, v in record.items() if v is not None and k not in ("id",)}
        for flat, key, items in (
            ("email", "email", "emails"),
            ("phone", "number", "phone_numbers"),
            ("website", "url", "websites"),
        ):
            value = body.pop(flat, None)
            if value and items not in body:
                body[items] = [{key: value}]
        if external_id is None:
            answer = self.client.request("POST", _PATHS[stream.name], json=body)
        else:
            answer = self.client.request("PATCH", f"{_PATHS[stream.name]}/{external_id}", json=body)
        data = (answer or {}).get("data") or {}
        return WriteResult(
            external_id=str(data.get("id") or external_id or ""), created=external_id is None
        )

    # -- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        payload = verified_json(
            "apideck",
            headers,
            body,
            signature_header="x-apideck-signature",
            expected=lambda raw: sign_apideck_webhook(self.api_key, raw),
        )
        item = payload.get("payload") if isinstance(payload, dict) else None
        if not isinstance(item, dict):
            raise ValidationError("apideck: webhook body lacks its payload")
        event = str(item.get("event_type") or "")
        stream = next((s for p, s in _EVENT_STREAMS.items() if event.startswith(p)), None)
        if stream is None or not item.get("entity_id"):
            raise ValidationError(f"apideck: webhook event {event!r} is not one Spojka follows")
        try:
            when = datetime.fromisoformat(str(item.get("occurred_at")).replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("apideck: webhook event has no occurred_at") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if abs(time.time() - when.timestamp()) > self.webhook_tolerance_s:
            raise AuthError("apideck: webhook event outside the accepted window (a replay?)")
        return [
            WebhookEvent(
                event_id=str(item.get("event_id") or f"{event}:{item['entity_id']}"),
                stream=stream,
                external_id=str(item["entity_id"]),
                deleted=event.endswith(".deleted"),
                occurred_at=when,
            )
        ]

    # -- health ----------------------------------------------------------------------------

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            self.client.request("GET", "/crm/companies", params={"limit": 1})
        except SpojkaError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(
            ok=True,
            detail="Apideck answers; the consumer's CRM is connected",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        self.client.close()
