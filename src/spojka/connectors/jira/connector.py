"""Jira Cloud connector (REST API v3): projects, issues, versions, worklogs.

Authentication: Atlassian API token, sent as HTTP Basic ``email:api_token``.
Pagination as Jira does it: ``startAt``/``maxResults`` with ``isLast``/``total`` for lists
and JQL search (``updated >= "yyyy-MM-dd HH:mm" ORDER BY updated ASC``), and the
``/worklog/updated?since=<ms>`` change feed (``lastPage``/``until``) followed by
``POST /worklog/list`` for worklogs. Versions are listed per project.

Webhooks: Jira Cloud signs a delivery with the secret given when registering it, header
``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``; the body's ``timestamp``
(milliseconds) must lie inside the tolerance window, so a replayed delivery is refused.
Only webhooks an administrator registered with a secret are signed; unsigned ones are
refused. ``X-Atlassian-Webhook-Identifier`` stays the same across Atlassian's retries of one
delivery and names the event, so a retry is stored once.

Contract-tested against Atlassian's published OpenAPI document served by Prism, not against
a live Jira Cloud site.
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
    header,
    verified_json,
)
from spojka.connectors.saas import saas_client
from spojka.core.errors import AuthError, SpojkaError, ValidationError

MAX_PAGE = 100
API = "/rest/api/3"

STREAMS: tuple[Stream, ...] = (
    Stream(name="projects", entity="Project", cursor_field=None, page_size=50, writable=False),
    Stream(name="issues", entity="Task", cursor_field="updated", page_size=MAX_PAGE),
    Stream(name="versions", entity="Milestone", cursor_field=None, page_size=50),
    Stream(name="worklogs", entity="Timesheet", cursor_field="updated", page_size=1000),
)

# webhookEvent prefix → stream
_EVENT_STREAMS = {
    "jira:issue": "issues",
    "worklog": "worklogs",
    "jira:version": "versions",
    "project": "projects",
}


def jql_time(since: str) -> str:
    """JQL wants ``yyyy-MM-dd HH:mm`` (minute precision; the engine's overlap covers it)."""
    when = _parse_time(since)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _parse_time(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    # Jira writes offsets as +0000; Python wants +00:00.
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"jira: not a timestamp: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def sign_jira_webhook(secret: str, body: bytes) -> str:
    """``X-Hub-Signature`` value Jira sends (sender side, for tests and tools)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class JiraConnector(Connector):
    kind: ClassVar[str] = "jira"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(config)
        token = base64.b64encode(
            f"{self.config.get('email')}:{self.config.get('api_token')}".encode()
        ).decode()
        basic = {"Authorization": f"Basic {token}"}
        self.client = saas_client(
            self.config,
            kind="jira",
            system="Jira",
            required=("url", "email", "api_token"),
            default_url="http://jira.invalid",
            auth_headers=lambda: basic,
            transport=transport,
        )
        self.page_size = min(int(self.config.get("page_size") or MAX_PAGE), MAX_PAGE)
        self.issue_type = str(self.config.get("issue_type") or "Task")
        self.webhook_secret = str(self.config.get("webhook_secret") or "")
        self.webhook_tolerance_s = float(self.config.get("webhook_tolerance_s") or 300.0)

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    # -- reading ---------------------------------------------------------------------------

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        if stream.name == "projects":
            return self._projects_page(page_token)
        if stream.name == "issues":
            return self._issues_page(since, page_token)
        if stream.name == "versions":
            return self._versions_page(page_token)
        if stream.name == "worklogs":
            return self._worklogs_page(since, page_token)
        raise ValidationError(f"jira: unknown stream {stream.name!r}")

    @staticmethod
    def _next_offset(body: Mapping[str, Any], start: int, got: int, key: str) -> str | None:
        """Jira's offset paging: stop on ``isLast``, an empty page or reaching ``total``."""
        if got == 0 or body.get("isLast") is True:
            return None
        total = body.get("total")
        if isinstance(total, int) and 0 <= total <= start + got:
            return None
        return str(start + got)

    def _projects_page(self, page_token: str | None) -> Page:
        start = int(page_token or 0)
        body = self.client.request(
            "GET",
            f"{API}/project/search",
            params={"startAt": start, "maxResults": min(self.page_size, 50), "orderBy": "key"},
        )
        values = [v for v in (body or {}).get("values") or [] if isinstance(v, dict)]
        return Page(
            records=[self._project(v) for v in values],
            next_token=self._next_offset(body or {}, start, len(values), "values"),
        )

    def _issues_page(self, since: str | None, page_token: str | None) -> Page:
        start = int(page_token or 0)
        jql = "ORDER BY updated ASC"
        if since:
            jql = f'updated >= "{jql_time(since)}" ' + jql
        projects = self.config.get("projects")
        if projects:
            keys = ", ".join(f'"{k}"' for k in projects)
            jql = f"project in ({keys}) AND " + jql if since else f"project in ({keys}) " + jql
        body = self.client.request(
            "GET",
            f"{API}/search",
            params={
                "jql": jql,
                "startAt": start,
                "maxResults": self.page_size,
                "fields": "summary,status,project,fixVersions,assignee,duedate,"
                "timeoriginalestimate,updated,created,issuetype",
            },
        )
        issues = [i for i in (body or {}).get("issues") or [] if isinstance(i, dict)]
        return Page(
            records=[self._issue(i) for i in issues],
            next_token=self._next_offset(body or {}, start, len(issues), "issues"),
        )

    def _project_keys(self) -> list[str]:
        configured = self.config.get("projects")
        if configured:
            return [str(k) for k in configured]
        keys: list[str] = []
        token: str | None = None
        while True:
            page = self._projects_page(token)
            keys.extend(str(r["key"]) for r in page.records if r.get("key"))
            if page.next_token is None:
                return keys
            token = page.next_token

    def _versions_page(self, page_token: str | None) -> Page:
        # Token: the projects still to list and the offset inside the first of them.
        if page_token is None:
            state: dict[str, Any] = {"keys": self._project_keys(), "at": 0}
        else:
            state = json.loads(page_token)
        keys: list[str] = list(state["keys"])
        if not keys:
            return Page(records=[], next_token=None)
        start = int(state["at"])
        body = self.client.request(
            "GET",
            f"{API}/project/{keys[0]}/version",
            params={"startAt": start, "maxResults": min(self.page_size, 50)},
        )
        values = [v for v in (body or {}).get("values") or [] if isinstance(v, dict)]
        records = [self._version(v, keys[0]) for v in values]
        following = self._next_offset(body or {}, start, len(values), "values")
        if following is not None:
            state = {"keys": keys, "at": int(following)}
        else:
            state = {"keys": keys[1:], "at": 0}
        return Page(records=records, next_token=json.dumps(state) if state["keys"] else None)

    def _worklogs_page(self, since: str | None, page_token: str | None) -> Page:
        if page_token is not None:
            since_ms = int(page_token)
        elif since:
            since_ms = int(_parse_time(since).timestamp() * 1000)
        else:
            since_ms = 0
        changed = (
            self.client.request("GET", f"{API}/worklog/updated", params={"since": since_ms}) or {}
        )
        ids = [
            int(v["worklogId"])
            for v in changed.get("values") or []
            if isinstance(v, dict) and isinstance(v.get("worklogId"), int)
        ]
        records: list[dict[str, Any]] = []
        if ids:
            listed = self.client.request("POST", f"{API}/worklog/list", json={"ids": ids})
            records = [self._worklog(w) for w in listed or [] if isinstance(w, dict)]
            projects = self._projects_of_issues({r["issue_id"] for r in records if r["issue_id"]})
            for record in records:
                record["project_id"] = projects.get(record["issue_id"])
        until = changed.get("until")
        done = changed.get("lastPage") is not False or not isinstance(until, int)
        if not done and isinstance(until, int) and until <= since_ms:
            done = True  # a feed that does not move forward would loop forever
        return Page(records=records, next_token=None if done else str(until))

    def _projects_of_issues(self, issue_ids: set[str]) -> dict[str, str]:
        """Issue id → project id (a worklog names only its issue; timesheets need the project)."""
        found: dict[str, str] = {}
        numeric = sorted(i for i in issue_ids if i.isdigit())
        for at in range(0, len(numeric), MAX_PAGE):
            chunk = numeric[at : at + MAX_PAGE]
            body = self.client.request(
                "GET",
                f"{API}/search",
                params={
                    "jql": f"id in ({', '.join(chunk)})",
                    "maxResults": MAX_PAGE,
                    "fields": "project",
                },
            )
            for issue in (body or {}).get("issues") or []:
                if isinstance(issue, dict) and issue.get("id"):
                    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
                    project = self._name((fields or {}).get("project"), "id")
                    if project:
                        found[str(issue["id"])] = str(project)
        return found

    # -- shaping: the system's field names, flattened to JSON-able values -------------------

    @staticmethod
    def _name(value: Any, key: str = "name") -> Any:
        return value.get(key) if isinstance(value, dict) else value

    def _project(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": str(raw.get("id") or raw.get("key") or ""),
            "key": raw.get("key"),
            "name": raw.get("name"),
            "archived": bool(raw.get("archived", False)),
            "lead": self._name(raw.get("lead"), "accountId"),
        }

    def _issue(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        fields = raw.get("fields") if isinstance(raw.get("fields"), dict) else {}
        assert isinstance(fields, dict)
        versions = fields.get("fixVersions") or []
        estimate = fields.get("timeoriginalestimate")
        return {
            "id": str(raw.get("id") or ""),
            "key": raw.get("key"),
            "summary": fields.get("summary"),
            "status": self._name(fields.get("status")),
            "project_id": str(self._name(fields.get("project"), "id") or ""),
            "version_id": (
                str(versions[0].get("id")) if versions and isinstance(versions[0], dict) else None
            ),
            "assignee": self._name(fields.get("assignee"), "accountId"),
            "duedate": fields.get("duedate"),
            "estimate_hours": (
                round(estimate / 3600, 2) if isinstance(estimate, int | float) else None
            ),
            "updated": fields.get("updated"),
        }

    def _version(self, raw: Mapping[str, Any], project_key: str) -> dict[str, Any]:
        return {
            "id": str(raw.get("id") or ""),
            "name": raw.get("name"),
            "project_id": str(raw.get("projectId") or project_key),
            "releaseDate": raw.get("releaseDate"),
            "released": bool(raw.get("released", False)),
            "archived": bool(raw.get("archived", False)),
        }

    def _worklog(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        seconds = raw.get("timeSpentSeconds")
        return {
            "id": str(raw.get("id") or ""),
            "issue_id": str(raw.get("issueId") or ""),
            "author": self._name(raw.get("author"), "accountId"),
            "started": raw.get("started"),
            "spent_on": str(raw["started"])[:10] if raw.get("started") else None,
            "hours": round(seconds / 3600, 2) if isinstance(seconds, int | float) else None,
            "comment": raw.get("comment") if isinstance(raw.get("comment"), str) else None,
            "updated": raw.get("updated"),
        }

    # -- writing ---------------------------------------------------------------------------

    @staticmethod
    def _adf(text: str) -> dict[str, Any]:
        """Jira v3 wants rich text as Atlassian Document Format."""
        return {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
        }

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        if stream.name == "issues":
            return self._write_issue(record, external_id)
        if stream.name == "versions":
            return self._write_version(record, external_id)
        if stream.name == "worklogs":
            return self._write_worklog(record, external_id)
        return super().write(stream, record, external_id=external_id, idempotency_key="")

    def _write_issue(self, record: Mapping[str, Any], external_id: str | None) -> WriteResult:
        fields: dict[str, Any] = {}
        if record.get("summary") is not None:
            fields["summary"] = str(record["summary"])
        if record.get("duedate"):
            fields["duedate"] = str(record["duedate"])
        if record.get("version_id"):
            fields["fixVersions"] = [{"id": str(record["version_id"])}]
        if external_id is None:
            if not record.get("project_id") or not fields.get("summary"):
                raise ValidationError("jira: a new issue needs project_id and summary")
            fields["project"] = {"id": str(record["project_id"])}
            fields["issuetype"] = {"name": str(record.get("issuetype") or self.issue_type)}
            created = self.client.request("POST", f"{API}/issue", json={"fields": fields})
            return WriteResult(external_id=str((created or {}).get("id") or ""), created=True)
        self.client.request("PUT", f"{API}/issue/{external_id}", json={"fields": fields})
        return WriteResult(external_id=external_id)

    def _write_version(self, record: Mapping[str, Any], external_id: str | None) -> WriteResult:
        body: dict[str, Any] = {"name": str(record.get("name") or "")}
        if record.get("releaseDate"):
            body["releaseDate"] = str(record["releaseDate"])
        if "released" in record:
            body["released"] = bool(record["released"])
        if external_id is None:
            project = str(record.get("project_id") or "")
            if not project.isdigit():
                raise ValidationError("jira: a new version needs the numeric project_id")
            body["projectId"] = int(project)
            created = self.client.request("POST", f"{API}/version", json=body)
            return WriteResult(external_id=str((created or {}).get("id") or ""), created=True)
        self.client.request("PUT", f"{API}/version/{external_id}", json=body)
        return WriteResult(external_id=external_id)

    def _write_worklog(self, record: Mapping[str, Any], external_id: str | None) -> WriteResult:
        issue = str(record.get("issue_id") or "")
        if not issue:
            raise ValidationError("jira: a worklog needs issue_id")
        hours = float(record.get("hours") or 0)
        if hours <= 0:
            raise ValidationError("jira: a worklog needs positive hours")
        body: dict[str, Any] = {"timeSpentSeconds": round(hours * 3600)}
        if record.get("started"):
            body["started"] = str(record["started"])
        if record.get("comment"):
            body["comment"] = self._adf(str(record["comment"]))
        if external_id is None:
            created = self.client.request("POST", f"{API}/issue/{issue}/worklog", json=body)
            return WriteResult(external_id=str((created or {}).get("id") or ""), created=True)
        self.client.request("PUT", f"{API}/issue/{issue}/worklog/{external_id}", json=body)
        return WriteResult(external_id=external_id)

    # -- webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        secret = self.webhook_secret
        if not secret:
            raise AuthError("jira: no webhook_secret configured; deliveries cannot be trusted")
        payload = verified_json(
            "jira",
            headers,
            body,
            signature_header="x-hub-signature",
            expected=lambda raw: sign_jira_webhook(secret, raw),
        )
        if not isinstance(payload, dict):
            raise ValidationError("jira: webhook body must be an object")
        stamp = payload.get("timestamp")
        if not isinstance(stamp, int):
            raise ValidationError("jira: webhook body has no timestamp")
        if abs(time.time() - stamp / 1000) > self.webhook_tolerance_s:
            raise AuthError("jira: webhook timestamp outside the accepted window")
        event = str(payload.get("webhookEvent") or "")
        stream = next((s for p, s in _EVENT_STREAMS.items() if event.startswith(p)), None)
        if stream is None:
            raise ValidationError(f"jira: webhook event {event!r} is not one Spojka follows")
        key = {"issues": "issue", "worklogs": "worklog", "versions": "version"}.get(
            stream, "project"
        )
        item = payload.get(key)
        if not isinstance(item, dict) or not item.get("id"):
            raise ValidationError(f"jira: webhook {event!r} lacks the {key}")
        record: dict[str, Any] | None
        if stream == "issues":
            record = self._issue(item)
        elif stream == "worklogs":
            record = self._worklog(item)
        elif stream == "versions":
            record = self._version(item, str(item.get("projectId") or ""))
        else:
            record = self._project(item)
        deleted = event.endswith("_deleted")
        # Atlassian keeps X-Atlassian-Webhook-Identifier across retries of one delivery.
        delivery = header(headers, "x-atlassian-webhook-identifier") or f"{event}:{item['id']}"
        return [
            WebhookEvent(
                event_id=f"{delivery}:{stamp}",
                stream=stream,
                external_id=str(item["id"]),
                version=record.get("updated") if record else None,
                record=None if deleted else record,
                deleted=deleted,
                occurred_at=datetime.fromtimestamp(stamp / 1000, tz=UTC),
            )
        ]

    # -- health ----------------------------------------------------------------------------

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            me = self.client.request("GET", f"{API}/myself") or {}
        except SpojkaError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(
            ok=True,
            detail=f"Jira answers; signed in as {me.get('accountId', '?')}",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        self.client.close()
