"""Verifying BottleCRM's signed webhook deliveries.

BottleCRM signs each delivery with ``X-BottleCRM-Signature: t=<unix>,v1=<hex>``, the hex
HMAC-SHA256, keyed by the endpoint's secret, of ``"<t>." + raw body``. A receiver must check
it against the raw bytes (before any JSON parsing), refuse a timestamp outside a short window
(a replayed old delivery), and compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spojka.connectors.base import signatures_match
from spojka.core.errors import AuthError, ValidationError

SIGNATURE_HEADER = "X-BottleCRM-Signature"
EVENT_HEADER = "X-BottleCRM-Event"
DELIVERY_HEADER = "X-BottleCRM-Delivery"
DEFAULT_TOLERANCE_S = 300.0

#: BottleCRM's event prefix → the stream that carries the record.
EVENT_STREAMS = {
    "deal": "opportunities",
    "account": "accounts",
    "contact": "contacts",
    "lead": "leads",
    "task": "tasks",
    "ticket": "tickets",
    "invoice": "invoices",
    "interaction": "activities",
}


@dataclass(frozen=True)
class BottleCRMEvent:
    """One verified delivery."""

    event_id: str
    event: str  # e.g. "deal.won"
    delivery_id: str
    org_id: str
    created_at: datetime | None
    data: dict[str, Any]
    signed_at: int

    @property
    def stream(self) -> str | None:
        return EVENT_STREAMS.get(self.event.split(".", 1)[0])

    @property
    def action(self) -> str:
        return self.event.split(".", 1)[-1]

    @property
    def record_id(self) -> str | None:
        value = self.data.get("id")
        return None if value is None else str(value)


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value BottleCRM would send (for tests and local senders)."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check the signature header against the raw body; return its timestamp.

    Raises ``AuthError`` when the header is missing, malformed, outside the window, or
    matches no ``v1`` value (several are allowed, as during a secret rotation).
    """
    if not secret:
        raise AuthError("BottleCRM webhook: no secret configured for this connection")
    if not header:
        raise AuthError(f"BottleCRM webhook: {SIGNATURE_HEADER} header missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise AuthError("BottleCRM webhook: signature timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        raise AuthError("BottleCRM webhook: signature header lacks t= or v1=")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise AuthError(
            f"BottleCRM webhook: signature timestamp is {abs(current - timestamp):.0f}s "
            f"away from now (allowed {tolerance_s:.0f}s); refusing a possible replay"
        )
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    # Check every candidate so the time taken does not depend on which one matched.
    matched = False
    for candidate in candidates:
        matched |= signatures_match(expected, candidate)
    if not matched:
        raise AuthError("BottleCRM webhook: signature does not match")
    return timestamp


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def verify_delivery(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> BottleCRMEvent:
    """Verify a delivery and return its event (``AuthError`` or ``ValidationError``)."""
    signed_at = verify_signature(
        secret, _header(headers, SIGNATURE_HEADER), body, tolerance_s=tolerance_s, now=now
    )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("BottleCRM webhook: body is not JSON") from None
    if not isinstance(payload, dict) or "event" not in payload:
        raise ValidationError("BottleCRM webhook: body has no event")
    header_event = _header(headers, EVENT_HEADER)
    if header_event and header_event != payload["event"]:
        raise ValidationError("BottleCRM webhook: event header and body disagree")
    created: datetime | None = None
    if isinstance(payload.get("created_at"), str):
        try:
            created = datetime.fromisoformat(payload["created_at"])
        except ValueError:
            created = None
    data = payload.get("data")
    return BottleCRMEvent(
        event_id=str(payload.get("id", "")),
        event=str(payload["event"]),
        delivery_id=_header(headers, DELIVERY_HEADER) or "",
        org_id=str(payload.get("org_id", "")),
        created_at=created,
        data=data if isinstance(data, dict) else {},
        signed_at=signed_at,
    )
