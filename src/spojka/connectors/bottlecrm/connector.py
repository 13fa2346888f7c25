"""BottleCRM (``django-crm`` 1.35) as a Spojka connector: the standalone CRM.

Config::

    url: http://127.0.0.1:8000          # BottleCRM's base URL (without /api)
    token: bcrm_pat_…                   # a personal access token (resolved from the secret store)
    webhook_secret: whsec_…             # the endpoint's secret, for verify_webhook
    page_size: 100                      # optional
    page_overlap: 5                     # optional, rows re-read from the previous page
    webhook_tolerance_s: 300            # optional, accepted signature age

Reading: BottleCRM has no "changed since" filter, so every stream is a full listing (the
engine de-duplicates by content hash; nothing unchanged is applied twice). Prompt changes
come by signed webhooks: :meth:`verify_webhook` checks the signature and reads the record
back from BottleCRM, so a webhook and a listing give the same record shape. Records are
normalised to stable fields (BottleCRM's lists also carry "3 minutes ago" style values that
would make every listing look like a change).

Writing: accounts, contacts, opportunities (including stage changes such as CLOSED_WON),
tasks, and notes (comments on an opportunity, account or contact; an Activity of kind
``task`` becomes a task). BottleCRM has no idempotency keys, so a create carries a marker
``[spojka:…]`` in the record's description (a note: in its text) and a retried create looks
the marker up first and returns the record the first attempt made.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from spojka.connectors.base import (
    Connector,
    Health,
    Page,
    Record,
    Stream,
    WebhookEvent,
    WriteResult,
)
from spojka.connectors.bottlecrm.client import DEFAULT_PAGE_SIZE, BottleCRMClient
from spojka.connectors.bottlecrm.webhooks import EVENT_STREAMS, verify_delivery
from spojka.core.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PermanentError,
    ValidationError,
)

#: Rows each listing page re-reads of the previous one (see read_page).
PAGE_OVERLAP = 5
MARKER = re.compile(r"\s*\[spojka:([0-9a-f]{20})\]\s*$")

STREAMS: tuple[Stream, ...] = (
    # Deletes: an account only while no deal or ticket hangs on it (BottleCRM would delete
    # them with it, see delete); contacts and tasks take nothing with them.
    Stream("accounts", "Account", page_size=DEFAULT_PAGE_SIZE, supports_deletes=True),
    Stream("contacts", "Contact", page_size=DEFAULT_PAGE_SIZE, supports_deletes=True),
    # Leads, tickets and activities are never written by Spojka, so never deleted either.
    Stream("leads", "Opportunity", page_size=DEFAULT_PAGE_SIZE, writable=False),
    # No deletes: a deal carries the sales history (won/lost, amounts); close it instead.
    Stream("opportunities", "Opportunity", page_size=DEFAULT_PAGE_SIZE),
    # The activity feed: newest 50 changes (who changed what), a backstop change signal.
    Stream("activities", "Activity", page_size=50, writable=False),
    Stream("tasks", "Activity", page_size=DEFAULT_PAGE_SIZE, supports_deletes=True),
    Stream("tickets", "Task", page_size=DEFAULT_PAGE_SIZE, writable=False),
    # Write-only: an Activity lands as a comment on its opportunity/account/contact.
    Stream("notes", "Activity", page_size=DEFAULT_PAGE_SIZE),
)
READABLE = {"accounts", "contacts", "leads", "opportunities", "activities", "tasks", "tickets"}
#: streams with a detail endpoint (``GET /api/<kind>/<id>/``) for read_one
DETAIL = READABLE - {"activities"}
#: what BottleCRM's ids look like (UUIDs); anything else is never put into a path
SAFE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def idempotency_marker(key: str) -> str:
    """The short, stable tag a create carries so a retry can find it."""
    return "[spojka:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20] + "]"


def _strip_marker(text: Any) -> Any:
    return MARKER.sub("", text) if isinstance(text, str) else text


def _ref(value: Any) -> str | None:
    """An id from a nested ``{"id": …}``, a bare id, or nothing."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return None if value in (None, "") else str(value)


def _address(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    parts = {
        "street": raw.get("address_line"),
        "city": raw.get("city"),
        "zip": raw.get("postcode"),
        "country": raw.get("country"),
    }
    if not any(parts.values()):
        return None
    return {k: v for k, v in parts.items() if v not in (None, "")}


def _domain(website: Any) -> str | None:
    """``https://www.firma.cz/kontakt`` → ``firma.cz`` (how Spojka matches companies)."""
    if not isinstance(website, str) or not website.strip():
        return None
    host = urlsplit(website if "//" in website else f"//{website}").hostname or ""
    return host.removeprefix("www.") or None


def _custom(raw: Mapping[str, Any], name: str) -> Any:
    fields = raw.get("custom_fields")
    return fields.get(name) if isinstance(fields, Mapping) else None


# Normalisers turn a list row or a detail object into one stable record per stream.
def normalise(stream: str, raw: Mapping[str, Any]) -> Record:
    if stream == "accounts":
        return {
            "id": str(raw["id"]),
            "name": raw.get("name"),
            "email": raw.get("email"),
            "phone": raw.get("phone"),
            "website": raw.get("website"),
            "domain": _domain(raw.get("website")),
            "industry": raw.get("industry"),
            "address_line": raw.get("address_line"),
            "city": raw.get("city"),
            "state": raw.get("state"),
            "postcode": raw.get("postcode"),
            "country": raw.get("country"),
            "address": _address(raw),
            "ico": _custom(raw, "ico"),
            "dic": _custom(raw, "dic"),
            "description": _strip_marker(raw.get("description")),
            "is_active": raw.get("is_active"),
            "created_at": raw.get("created_at"),
        }
    if stream == "contacts":
        return {
            "id": str(raw["id"]),
            "first_name": raw.get("first_name"),
            "last_name": raw.get("last_name"),
            "email": raw.get("email"),
            "phone": raw.get("phone"),
            "title": raw.get("title"),
            "department": raw.get("department"),
            "organization": raw.get("organization"),
            "account_id": _ref(raw.get("account")),
            "address_line": raw.get("address_line"),
            "city": raw.get("city"),
            "postcode": raw.get("postcode"),
            "country": raw.get("country"),
            "description": _strip_marker(raw.get("description")),
            "is_active": raw.get("is_active"),
            "created_at": raw.get("created_at"),
            "updated_at": raw.get("updated_at"),
        }
    if stream == "leads":
        return {
            "id": str(raw["id"]),
            "title": raw.get("title"),
            "first_name": raw.get("first_name"),
            "last_name": raw.get("last_name"),
            "email": raw.get("email"),
            "phone": raw.get("phone"),
            "company_name": raw.get("company_name"),
            "status": raw.get("status"),
            "source": raw.get("source"),
            "opportunity_amount": raw.get("opportunity_amount"),
            "currency": raw.get("currency"),
            "probability": raw.get("probability"),
            "close_date": raw.get("close_date"),
            "city": raw.get("city"),
            "country": raw.get("country"),
            "description": _strip_marker(raw.get("description")),
            "created_at": raw.get("created_at"),
            "updated_at": raw.get("updated_at"),
        }
    if stream == "opportunities":
        kind = raw.get("stage_kind")
        return {
            "id": str(raw["id"]),
            "name": raw.get("name"),
            "account_id": _ref(raw.get("account")),
            "pipeline_id": _ref(raw.get("pipeline")),
            "stage": raw.get("stage"),
            "stage_kind": kind,
            "won": kind == "won",
            "lost": kind == "lost",
            "amount": raw.get("amount"),
            "currency": raw.get("currency"),
            "probability": raw.get("probability"),
            "closed_on": raw.get("closed_on"),
            "lead_source": raw.get("lead_source"),
            "contact_ids": sorted(_ref(c) or "" for c in raw.get("contacts") or []),
            "description": _strip_marker(raw.get("description")),
            "created_at": raw.get("created_at"),
            "stage_changed_at": raw.get("stage_changed_at"),
        }
    if stream == "tasks":
        # No description: BottleCRM's task list leaves it out, so a listing and a
        # read-back would otherwise disagree about the same task.
        return {
            "id": str(raw["id"]),
            "title": raw.get("title"),
            "status": raw.get("status"),
            "priority": raw.get("priority"),
            "due_date": raw.get("due_date"),
            "account_id": _ref(raw.get("account")),
            "opportunity_id": _ref(raw.get("opportunity")),
            "ticket_id": _ref(raw.get("case")),
            "lead_id": _ref(raw.get("lead")),
            "created_at": raw.get("created_at"),
        }
    if stream == "tickets":
        return {
            "id": str(raw["id"]),
            "name": raw.get("name"),
            "status": raw.get("status"),
            "priority": raw.get("priority"),
            "case_type": raw.get("case_type"),
            "account_id": _ref(raw.get("account")),
            "closed_on": raw.get("closed_on"),
            "description": _strip_marker(raw.get("description")),
            "created_at": raw.get("created_at"),
        }
    if stream == "activities":
        return {
            "id": str(raw["id"]),
            "action": raw.get("action"),
            "entity_type": raw.get("entity_type"),
            "entity_id": raw.get("entity_id"),
            "entity_name": raw.get("entity_name"),
            "description": raw.get("description"),
            "timestamp": raw.get("timestamp"),
        }
    return dict(raw)


# What a canonical-shaped outbound record becomes in BottleCRM's write API.
def _account_payload(record: Mapping[str, Any]) -> dict[str, Any]:
    payload = {
        k: record[k]
        for k in (
            "name",
            "email",
            "phone",
            "website",
            "industry",
            "address_line",
            "city",
            "state",
            "postcode",
            "country",
            "description",
        )
        if k in record
    }
    # IČO/DIČ live in the account custom fields ``ico``/``dic`` (the local instance has them;
    # elsewhere an admin creates them once). BottleCRM merges a partial custom_fields dict.
    custom = {k: record[k] for k in ("ico", "dic") if record.get(k)}
    if custom:
        payload["custom_fields"] = custom
    if record.get("domain") and "website" not in payload:
        payload["website"] = f"https://{record['domain']}"  # BottleCRM wants a URL
    address = record.get("address")
    if isinstance(address, Mapping):
        for source, target in (
            ("street", "address_line"),
            ("city", "city"),
            ("zip", "postcode"),
            ("country", "country"),
        ):
            if address.get(source) not in (None, ""):
                payload.setdefault(target, address[source])
    return payload


_CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "department",
    "organization",
    "address_line",
    "city",
    "postcode",
    "country",
    "description",
)
_OPPORTUNITY_FIELDS = (
    "name",
    "stage",
    "amount",
    "currency",
    "probability",
    "closed_on",
    "lead_source",
    "description",
)
_TASK_FIELDS = ("title", "status", "priority", "due_date", "description")


def _payload(stream: str, record: Mapping[str, Any]) -> dict[str, Any]:
    if stream == "accounts":
        return _account_payload(record)
    if stream == "contacts":
        payload = {k: record[k] for k in _CONTACT_FIELDS if k in record}
        if record.get("account_id"):
            payload["account"] = record["account_id"]
        return payload
    if stream == "opportunities":
        payload = {k: record[k] for k in _OPPORTUNITY_FIELDS if k in record}
        if record.get("account_id"):
            payload["account"] = record["account_id"]
        if record.get("contact_ids"):
            payload["contacts"] = list(record["contact_ids"])
        return {k: (str(v) if k == "amount" and v is not None else v) for k, v in payload.items()}
    if stream == "tasks":
        payload = {k: record[k] for k in _TASK_FIELDS if k in record}
        for source, target in (
            ("account_id", "account"),
            ("opportunity_id", "opportunity"),
            ("ticket_id", "case"),
            ("lead_id", "lead"),
        ):
            if record.get(source):
                payload[target] = record[source]
        return payload
    raise PermanentError(f"BottleCRM: stream {stream!r} is read-only")


# Where a create's marker goes, and how candidates are narrowed before looking for it.
_LOOKUP = {
    "accounts": ("name", "search"),
    "contacts": ("last_name", "name"),
    "opportunities": ("name", "name"),
    "tasks": ("title", "title"),
}


class BottleCRMConnector(Connector):
    """Accounts, contacts, leads, opportunities, activities, tasks and tickets of BottleCRM."""

    kind = "bottlecrm"
    capabilities: ClassVar[tuple[str, ...]] = ("read", "write", "webhooks")

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, client: BottleCRMClient | None = None
    ) -> None:
        super().__init__(config)
        url = self.config.get("url")
        token = self.config.get("token")
        if client is None and (not url or not token):
            raise ConfigError("bottlecrm connection needs `url` and `token` (a bcrm_pat_ token)")
        self.page_size = int(self.config.get("page_size", DEFAULT_PAGE_SIZE))
        self.page_overlap = int(self.config.get("page_overlap", PAGE_OVERLAP))
        self._custom_fields: dict[str, set[str]] = {}
        self.client = client or BottleCRMClient(
            str(url), str(token), timeout=float(self.config.get("timeout", 30.0))
        )

    def __repr__(self) -> str:
        return f"BottleCRMConnector(url={self.client.base_url!r})"

    # -- declaration ---------------------------------------------------------------
    def streams(self) -> Sequence[Stream]:
        return STREAMS

    # -- reading -------------------------------------------------------------------
    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        """One page of a full listing; ``since`` is ignored (BottleCRM cannot filter)."""
        if stream.name not in READABLE:
            return Page(records=[])
        part, offset = _decode_token(page_token)
        limit = min(stream.page_size, self.page_size)
        rows, more = self.client.list_page(stream.name, part=part, offset=offset, limit=limit)
        records = [normalise(stream.name, row) for row in rows]
        if more:
            # Pages overlap: a record deleted meanwhile on an earlier page shifts the rest
            # up, and without overlap the next page would skip one. Repeats are harmless
            # (the engine drops unchanged records); progress is still at least one row.
            step = max(1, len(rows) - min(self.page_overlap, limit // 2))
            return Page(records, next_token=f"{part}:{offset + step}")
        if part + 1 < self.client.parts(stream.name):
            return Page(records, next_token=f"{part + 1}:0")
        return Page(records)

    def fetch(self, stream: str, record_id: str) -> Record:
        """One record, normalised like a listing gives it."""
        return normalise(stream, self.client.fetch(stream, record_id))

    def read_one(self, stream: Stream, external_id: str) -> Record | None:
        """One ``GET /api/<kind>/<id>/``, normalised like a listing gives it; None when
        BottleCRM has no such record (the activity feed has no detail view: it is searched)."""
        if stream.name not in READABLE or not SAFE_ID.match(external_id):
            return None
        if stream.name not in DETAIL:
            return super().read_one(stream, external_id)
        try:
            return self.fetch(stream.name, external_id)
        except NotFoundError:
            return None

    def list_ids(self, stream: Stream) -> Iterable[str]:
        """Every id, read with overlapping pages: a missed id would look like a delete."""
        if stream.name not in READABLE:
            return []
        seen: dict[str, None] = {}
        token: str | None = None
        while True:
            page = self.read_page(stream, since=None, page_token=token)
            seen.update((str(r["id"]), None) for r in page.records)
            if page.next_token is None:
                return list(seen)
            token = page.next_token

    # -- writing -------------------------------------------------------------------
    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        if stream.name == "notes":
            return self._write_note(record, idempotency_key=idempotency_key)
        if not stream.writable or stream.name not in _LOOKUP:
            raise PermanentError(f"BottleCRM: stream {stream.name!r} is read-only")
        payload = _payload(stream.name, record)
        if stream.name == "accounts" and payload.get("custom_fields"):
            self._require_custom_fields("Account", payload["custom_fields"])
        if external_id is not None:
            if payload:
                self.client.update(stream.name, external_id, payload)
            return WriteResult(external_id=external_id)
        marker = idempotency_marker(idempotency_key)
        existing = self._find_marked(stream.name, payload, marker)
        if existing is not None:
            return WriteResult(external_id=existing, created=False)
        description = str(payload.get("description") or "").strip()
        payload["description"] = f"{description} {marker}".strip()
        new_id = self.client.create(stream.name, payload)
        return WriteResult(external_id=new_id, created=True)

    def delete(self, stream: Stream, external_id: str, *, idempotency_key: str) -> WriteResult:
        """Delete an account, contact or task; one already gone is a success.

        BottleCRM deletes an account's deals and tickets with it: an account that still has
        any is refused (``PermanentError``) so a person decides. BottleCRM's own refusals (a
        409: invoices or projects linked to it) become a ``PermanentError`` with its reason.
        """
        if not stream.supports_deletes:
            return super().delete(stream, external_id, idempotency_key=idempotency_key)
        if not SAFE_ID.match(external_id):
            return WriteResult(external_id=external_id, already_gone=True)
        try:
            if stream.name == "accounts":
                self._refuse_cascading_account_delete(external_id)
            self.client.remove(stream.name, external_id)
        except NotFoundError:
            return WriteResult(external_id=external_id, already_gone=True)
        except ConflictError as exc:
            raise PermanentError(
                f"BottleCRM refuses to delete {stream.name} record {external_id}: "
                f"{exc.detail.get('message') or exc.message}",
                detail=exc.detail,
            ) from exc
        return WriteResult(external_id=external_id)

    def _refuse_cascading_account_delete(self, account_id: str) -> None:
        body = self.client.get(f"/api/accounts/{account_id}/")
        detail: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        deals = detail.get("opportunity_list") or []
        tickets = detail.get("cases") or []
        if deals or tickets:
            raise PermanentError(
                f"BottleCRM: account {account_id} still has {len(deals)} deal(s) and "
                f"{len(tickets)} ticket(s), which BottleCRM would delete with it; move or "
                "delete them in BottleCRM first",
                detail={"account": account_id, "deals": len(deals), "tickets": len(tickets)},
            )

    def _require_custom_fields(self, model: str, values: Mapping[str, Any]) -> None:
        """BottleCRM silently drops values of custom fields it does not have: refuse instead."""
        known = self._custom_fields.get(model)
        if known is None:
            known = self._custom_fields[model] = self.client.custom_field_keys(model)
        missing = sorted(set(values) - known)
        if missing:
            raise PermanentError(
                f"BottleCRM has no {model} custom field {', '.join(map(repr, missing))}: create "
                "it (text, key as named) in BottleCRM or remove the field from the mapping",
                detail={"field_errors": {f"custom_fields.{k}": ["unknown"] for k in missing}},
            )

    def _find_marked(self, stream: str, payload: Mapping[str, Any], marker: str) -> str | None:
        """A record an earlier attempt of this very write created, if any."""
        field, param = _LOOKUP[stream]
        value = payload.get(field)
        if not value:
            return None
        for row in self.client.find(stream, {param: str(value)}):
            description = row.get("description")
            if stream == "tasks":  # the task list has no description: read each candidate
                description = self.client.fetch("tasks", str(row["id"])).get("description")
            if isinstance(description, str) and description.rstrip().endswith(marker):
                return str(row["id"])
        return None

    def _write_note(self, record: Mapping[str, Any], *, idempotency_key: str) -> WriteResult:
        """An Activity: a task when its kind is ``task``, else a note on the linked record."""
        if record.get("kind") == "task":
            task = {
                "title": record.get("subject") or record.get("title"),
                "description": record.get("body"),
                "account_id": record.get("account_id"),
                "opportunity_id": record.get("opportunity_id"),
                "status": record.get("status") or "New",
                "priority": record.get("priority") or "Medium",
                "due_date": record.get("due"),
            }
            return self.write(
                self.stream("tasks"),
                {k: v for k, v in task.items() if v is not None},
                external_id=None,
                idempotency_key=idempotency_key,
            )
        home = next(
            (
                (kind, str(record[field]))
                for field, kind in (
                    ("opportunity_id", "opportunities"),
                    ("account_id", "accounts"),
                    ("contact_id", "contacts"),
                )
                if record.get(field)
            ),
            None,
        )
        if home is None:
            raise ValidationError(
                "BottleCRM: a note needs an opportunity_id, account_id or contact_id to land on"
            )
        kind, target = home
        marker = idempotency_marker(idempotency_key)
        note_id = f"{kind}:{target}:{marker[8:-1]}"
        for comment in self.client.comments(kind, target):
            if str(comment.get("comment", "")).rstrip().endswith(marker):
                return WriteResult(external_id=note_id, created=False)
        subject = str(record.get("subject") or "").strip()
        body = str(record.get("body") or "").strip()
        text = f"{subject}\n{body}".strip() if body and body != subject else subject
        if not text:
            raise ValidationError("BottleCRM: a note needs a subject or a body")
        self.client.add_comment(kind, target, f"{text} {marker}")
        return WriteResult(external_id=note_id, created=True)

    # -- webhooks ------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        """Check the signature, then read the record back so its shape equals a listing's."""
        secret = str(self.config.get("webhook_secret") or "")
        tolerance = float(self.config.get("webhook_tolerance_s", 300.0))
        event = verify_delivery(secret, headers, body, tolerance_s=tolerance)
        stream = event.stream
        if stream is None or stream not in READABLE or event.record_id is None:
            return []  # an event of a kind Spojka does not sync (e.g. invoices)
        event_id = event.event_id or event.delivery_id
        if event.action == "deleted":
            return [
                WebhookEvent(
                    event_id=event_id,
                    stream=stream,
                    external_id=event.record_id,
                    deleted=True,
                    occurred_at=event.created_at,
                )
            ]
        try:
            record = self.fetch(stream, event.record_id)
        except NotFoundError:
            # Deleted between the event and now: that is what the system says today.
            return [
                WebhookEvent(
                    event_id=event_id,
                    stream=stream,
                    external_id=event.record_id,
                    deleted=True,
                    occurred_at=event.created_at,
                )
            ]
        return [
            WebhookEvent(
                event_id=event_id,
                stream=stream,
                external_id=event.record_id,
                record=record,
                occurred_at=event.created_at,
            )
        ]

    # -- health --------------------------------------------------------------------
    def health(self) -> Health:
        import time

        started = time.perf_counter()
        profile = self.client.whoami()
        role = profile.get("user_obj", {}).get("role") if isinstance(profile, dict) else None
        return Health(
            ok=True,
            detail=f"BottleCRM answers; token accepted (role {role or 'unknown'})",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        self.client.close()


def _decode_token(token: str | None) -> tuple[int, int]:
    if not token:
        return 0, 0
    try:
        part, offset = token.split(":", 1)
        return int(part), int(offset)
    except ValueError:
        raise ValidationError(f"BottleCRM: bad page token {token!r}") from None


def default_mapping() -> str:
    """The shipped mapping YAML (copy it to change it)."""
    return (Path(__file__).parent / "mappings" / "default.yaml").read_text(encoding="utf-8")


__all__ = [
    "EVENT_STREAMS",
    "BottleCRMConnector",
    "default_mapping",
    "idempotency_marker",
    "normalise",
]
