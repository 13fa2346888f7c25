"""Asana connector: projects, tasks, sections.

Authentication: a personal access token (or an OAuth access token) as ``Bearer``.
Pagination as Asana does it: ``limit`` (1–100) and the opaque ``offset`` from
``next_page.offset``. Tasks are listed per project with ``modified_since``; sections per
project. Every answer wraps its payload in ``data``, and so must every write.

Webhooks: creating an Asana webhook makes Asana POST a handshake carrying ``X-Hook-Secret``
to the target while the create call waits; the receiver answers ``200`` echoing the header
and keeps the secret (``webhook_secret``, stored encrypted). Every later delivery carries
``X-Hook-Signature`` = hex HMAC-SHA256 of the raw body with that secret. Only the first
handshake of a connection is accepted: once a secret is stored, another one is refused
(else anyone could replace the secret); to register a new webhook, clear
``webhook_secret`` in the connection first. Events older than the tolerance (by
``created_at``) are refused as replays.

Contract-tested against Asana's published OpenAPI document served by Prism, not against the
live Asana API.
"""

from __future__ import annotations

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
    WebhookReply,
    WriteResult,
    signatures_match,
    verified_json,
)
from spojka.connectors.saas import saas_client
from spojka.core.errors import AuthError, SpojkaError, ValidationError

MAX_PAGE = 100

STREAMS: tuple[Stream, ...] = (
    Stream(
        name="projects",
        entity="Project",
        primary_key="gid",
        cursor_field=None,
        version_field="modified_at",
        page_size=MAX_PAGE,
        writable=False,
    ),
    Stream(
        name="tasks",
        entity="Task",
        primary_key="gid",
        cursor_field="modified_at",
        page_size=MAX_PAGE,
    ),
    Stream(
        name="sections",
        entity="Milestone",
        primary_key="gid",
        cursor_field=None,
        page_size=MAX_PAGE,
        writable=False,
    ),
)
_FIELDS = {
    "projects": "name,archived,completed,due_on,start_on,owner,modified_at,current_status",
    "tasks": "name,completed,assignee,due_on,modified_at,memberships.section,"
    "memberships.project,projects",
    "sections": "name,project,created_at",
}
_EVENT_STREAMS = {"task": "tasks", "project": "projects", "section": "sections"}


def sign_asana_webhook(secret: str, body: bytes) -> str:
    """``X-Hook-Signature`` value Asana sends (sender side, for tests and tools)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AsanaConnector(Connector):
    kind: ClassVar[str] = "asana"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(config)
        bearer = {"Authorization": f"Bearer {self.config.get('token')}"}
        self.client = saas_client(
            self.config,
            kind="asana",
            system="Asana",
            required=("token", "workspace"),
            default_url="https://app.asana.com/api/1.0",
            auth_headers=lambda: bearer,
            transport=transport,
        )
        self.workspace = str(self.config.get("workspace") or "")
        self.page_size = min(int(self.config.get("page_size") or MAX_PAGE), MAX_PAGE)
        self.webhook_secret = str(self.config.get("webhook_secret") or "")
        self.webhook_tolerance_s = float(self.config.get("webhook_tolerance_s") or 3600.0)

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    # -- reading ---------------------------------------------------------------------------

    def _list(
        self, path: str, params: dict[str, Any], offset: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        query = {**params, "limit": self.page_size}
        if offset:
            query["offset"] = offset
        body = self.client.request("GET", path, params=query) or {}
        items = [i for i in body.get("data") or [] if isinstance(i, dict)]
        following = body.get("next_page")
        token = following.get("offset") if isinstance(following, dict) else None
        return items, (str(token) if token and items else None)

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        if stream.name == "projects":
            items, token = self._list(
                "/projects",
                {"workspace": self.workspace, "opt_fields": _FIELDS["projects"]},
                page_token,
            )
            return Page(records=[self._project(i) for i in items], next_token=token)
        if stream.name in ("tasks", "sections"):
            return self._per_project(stream.name, since, page_token)
        raise ValidationError(f"asana: unknown stream {stream.name!r}")

    def _project_gids(self) -> list[str]:
        if self.config.get("projects"):
            return [str(p) for p in self.config["projects"]]
        gids: list[str] = []
        token: str | None = None
        while True:
            items, token = self._list(
                "/projects", {"workspace": self.workspace, "opt_fields": "gid"}, token
            )
            gids.extend(str(i["gid"]) for i in items if i.get("gid"))
            if token is None:
                return gids

    def _per_project(self, name: str, since: str | None, page_token: str | None) -> Page:
        state: dict[str, Any] = (
            json.loads(page_token) if page_token else {"gids": self._project_gids(), "at": None}
        )
        gids = list(state["gids"])
        if not gids:
            return Page(records=[], next_token=None)
        if name == "tasks":
            params: dict[str, Any] = {"project": gids[0], "opt_fields": _FIELDS["tasks"]}
            if since:
                params["modified_since"] = since
            items, token = self._list("/tasks", params, state["at"])
            records = [self._task(i, gids[0]) for i in items]
        else:
            items, token = self._list(
                f"/projects/{gids[0]}/sections", {"opt_fields": _FIELDS["sections"]}, state["at"]
            )
            records = [self._section(i, gids[0]) for i in items]
        state = {"gids": gids, "at": token} if token else {"gids": gids[1:], "at": None}
        return Page(records=records, next_token=json.dumps(state) if state["gids"] else None)

    # -- shaping ---------------------------------------------------------------------------

    @staticmethod
    def _gid(value: Any) -> str | None:
        return str(value["gid"]) if isinstance(value, dict) and value.get("gid") else None

    def _project(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "gid": str(raw.get("gid") or ""),
            "name": raw.get("name"),
            "archived": bool(raw.get("archived", False)),
            "completed": bool(raw.get("completed", False)),
            "start_on": raw.get("start_on"),
            "due_on": raw.get("due_on"),
            "owner": self._gid(raw.get("owner")),
            "modified_at": raw.get("modified_at"),
        }

    def _task(self, raw: Mapping[str, Any], project_gid: str) -> dict[str, Any]:
        section = None
        for membership in raw.get("memberships") or []:
            if isinstance(membership, dict) and self._gid(membership.get("project")) in (
                project_gid,
                None,
            ):
                section = self._gid(membership.get("section")) or section
        return {
            "gid": str(raw.get("gid") or ""),
            "name": raw.get("name"),
            "completed": bool(raw.get("completed", False)),
            "project_gid": project_gid,
            "section_gid": section,
            "assignee": self._gid(raw.get("assignee")),
            "due_on": raw.get("due_on"),
            "modified_at": raw.get("modified_at"),
        }

    def _section(self, raw: Mapping[str, Any], project_gid: str) -> dict[str, Any]:
        return {
            "gid": str(raw.get("gid") or ""),
            "name": raw.get("name"),
            "project_gid": self._gid(raw.get("project")) or project_gid,
        }

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        if stream.name != "tasks":
            return super().write(stream, record, external_id=external_id, idempotency_key="")
        data: dict[str, Any] = {}
        for key in ("name", "due_on", "completed", "assignee"):
            if record.get(key) is not None:
                data[key] = record[key]
        if external_id is None:
            if not record.get("project_gid") or not data.get("name"):
                raise ValidationError("asana: a new task needs project_gid and name")
            data["projects"] = [str(record["project_gid"])]
            data["workspace"] = self.workspace
            body = self.client.request("POST", "/tasks", json={"data": data})
        else:
            body = self.client.request("PUT", f"/tasks/{external_id}", json={"data": data})
        saved = (body or {}).get("data") or {}
        return WriteResult(
            external_id=str(saved.get("gid") or external_id or ""),
            version=saved.get("modified_at"),
            created=external_id is None,
        )

    # -- webhooks --------------------------------------------------------------------------

    def webhook_handshake(self, headers: Mapping[str, str], body: bytes) -> WebhookReply | None:
        lowered = {k.lower(): v for k, v in headers.items()}
        secret = lowered.get("x-hook-secret")
        if secret is None:
            return None
        secret = secret.strip()
        if not secret:
            raise ValidationError("asana: the handshake's X-Hook-Secret is empty")
        if self.webhook_secret and not signatures_match(secret, self.webhook_secret):
            raise AuthError(
                "asana: this connection already keeps a webhook secret; a new handshake is "
                "refused (clear webhook_secret in the connection to register a new webhook)"
            )
        return WebhookReply(
            status=200, headers={"X-Hook-Secret": secret}, remember={"webhook_secret": secret}
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        secret = self.webhook_secret
        if not secret:
            raise AuthError("asana: no webhook_secret stored from the handshake")
        payload = verified_json(
            "asana",
            headers,
            body,
            signature_header="x-hook-signature",
            expected=lambda raw: sign_asana_webhook(secret, raw),
        )
        events: list[WebhookEvent] = []
        items = payload.get("events") if isinstance(payload, dict) else None
        for item in items or []:
            resource = item.get("resource") if isinstance(item, dict) else None
            if not isinstance(resource, dict) or not resource.get("gid"):
                raise ValidationError("asana: webhook event lacks its resource")
            stream = _EVENT_STREAMS.get(str(resource.get("resource_type")))
            if stream is None:
                continue
            try:
                when = datetime.fromisoformat(str(item.get("created_at")).replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError("asana: webhook event has no created_at") from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            if abs(time.time() - when.timestamp()) > self.webhook_tolerance_s:
                raise AuthError("asana: webhook event outside the accepted window (a replay?)")
            action = str(item.get("action") or "")
            events.append(
                WebhookEvent(
                    event_id=f"{resource['gid']}:{action}:{item.get('created_at')}",
                    stream=stream,
                    external_id=str(resource["gid"]),
                    deleted=action == "deleted",
                    occurred_at=when,
                )
            )
        return events

    # -- health ----------------------------------------------------------------------------

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            me = self.client.request("GET", "/users/me", params={"opt_fields": "name"}) or {}
        except SpojkaError as exc:
            return Health(ok=False, detail=str(exc))
        name = (me.get("data") or {}).get("name", "?")
        return Health(
            ok=True,
            detail=f"Asana answers; signed in as {name}",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        self.client.close()
