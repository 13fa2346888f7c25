"""Redmine 5 as a Spojka connector: projects, milestones, issues, time entries, people.

Config::

    url: http://127.0.0.1:3000
    api_key: "…"                       # resolved from the secret store by the caller
    page_size: 100                     # Redmine caps it at 100
    effort_field: "Odhad pracnosti (h)"  # issue custom fields Spojka reads and writes
    price_field: "Cena (Kč)"
    key_field: "Spojka ID"             # filterable custom field carrying idempotency keys
    templates: {name: {...}}           # optional project templates (see templates/*.yaml)

Change capture: issues are polled with ``updated_on>=since&status_id=*`` (without
``status_id=*`` closed issues vanish) sorted by ``updated_on,id``. The page token remembers
the last ``updated_on`` and how many issues with exactly that second were already read, so an
issue edited while we page (it jumps to the end) does not push an unread one past us; the
engine's overlap window and (id, ``updated_on``) de-duplication absorb the repeats. Projects,
versions, time entries and users have no "changed since" filter: full listings, and
reconciliation by :meth:`list_ids` finds deletes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from spojka.connectors.base import Connector, Health, Page, Record, Stream, WriteResult
from spojka.connectors.redmine.client import MAX_PAGE, RedmineClient
from spojka.core.errors import (
    ConfigError,
    NotFoundError,
    PermanentError,
    SpojkaError,
    ValidationError,
)

TEMPLATES_DIR = Path(__file__).with_name("templates")
# Streams of issues split by tracker name; "tasks" takes every tracker not claimed here.
TRACKER_STREAMS = {"change_requests": ("Change request",), "support_tickets": ("Support",)}


def redmine_time(since: str) -> str:
    """An ISO timestamp as Redmine's filter wants it (UTC, whole seconds, ``Z``)."""
    parsed = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.replace(microsecond=0).isoformat() + "Z"


def slug(text: str, *, limit: int = 40) -> str:
    """A Redmine project identifier: lower-case ASCII letters, digits and dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"p-{cleaned}".rstrip("-")
    return cleaned[:limit].rstrip("-")


def _ref(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _float_or_none(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def load_template(name: str) -> dict[str, Any]:
    path = TEMPLATES_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml")))
        raise ValidationError(f"redmine: no project template {name!r} (known: {known})")
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


class RedmineConnector(Connector):
    kind = "redmine"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        missing = [k for k in ("url", "api_key") if not self.config.get(k)]
        if missing:
            raise ConfigError(f"redmine connector needs {', '.join(missing)}")
        self.client = RedmineClient(
            str(self.config["url"]),
            str(self.config["api_key"]),
            timeout=float(self.config.get("timeout") or 30.0),
        )
        self.page_size = min(int(self.config.get("page_size") or MAX_PAGE), MAX_PAGE)
        self.effort_field = str(self.config.get("effort_field") or "Odhad pracnosti (h)")
        self.price_field = str(self.config.get("price_field") or "Cena (Kč)")
        self.key_field = str(self.config.get("key_field") or "Spojka ID")
        self._names: dict[str, dict[str, int]] = {}

    def __repr__(self) -> str:
        return f"RedmineConnector({self.client!r})"

    # -- declaration ---------------------------------------------------------------------

    def streams(self) -> Sequence[Stream]:
        size = self.page_size

        def issues(name: str, entity: str) -> Stream:
            return Stream(
                name=name,
                entity=entity,
                cursor_field="updated_on",
                version_field="updated_on",
                page_size=size,
                supports_deletes=True,  # unless it has subtasks or logged time (see delete)
            )

        def listing(
            name: str, entity: str, *, writable: bool = True, deletes: bool = False
        ) -> Stream:
            return Stream(
                name=name,
                entity=entity,
                cursor_field=None,
                version_field="updated_on",
                page_size=size,
                supports_deletes=deletes,
                writable=writable,
            )

        return [
            # No deletes: deleting a project deletes its issues, logged time, wiki and files
            # for good; closing or archiving it is a person's call.
            listing("projects", "Project"),
            # Redmine itself refuses to delete a version that issues still use.
            listing("versions", "Milestone", deletes=True),
            issues("tasks", "Task"),
            issues("change_requests", "ChangeRequest"),
            issues("support_tickets", "Task"),
            listing("time_entries", "Timesheet", deletes=True),
            listing("users", "User", writable=False),
            # No deletes: taking someone's access away is a person's call.
            listing("memberships", "Membership"),
        ]

    # -- lookups of names → ids (trackers, statuses, custom fields, activities, roles) ---

    def _lookup(self, kind: str) -> dict[str, int]:
        if kind not in self._names:
            if kind == "trackers":
                items = self.client.get("/trackers.json")["trackers"]
            elif kind == "statuses":
                items = self.client.get("/issue_statuses.json")["issue_statuses"]
            elif kind == "activities":
                items = self.client.get("/enumerations/time_entry_activities.json")[
                    "time_entry_activities"
                ]
            elif kind == "roles":
                items = self.client.get("/roles.json")["roles"]
            elif kind == "issue_fields":
                items = [
                    f
                    for f in self.client.get("/custom_fields.json")["custom_fields"]
                    if f.get("customized_type") == "issue"
                ]
            elif kind == "time_entry_fields":
                items = [
                    f
                    for f in self.client.get("/custom_fields.json")["custom_fields"]
                    if f.get("customized_type") == "time_entry"
                ]
            elif kind == "users":
                items = list(self.client.iter_all("/users.json", "users", status=""))
                self._names[kind] = {str(u["login"]): int(u["id"]) for u in items}
                return self._names[kind]
            else:  # pragma: no cover - programming error
                raise KeyError(kind)
            self._names[kind] = {str(i["name"]): int(i["id"]) for i in items}
        return self._names[kind]

    def _id_of(self, kind: str, value: Any) -> int:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
        table = self._lookup(kind)
        if value not in table:
            known = ", ".join(sorted(table))
            raise ValidationError(f"redmine: unknown {kind} value {value!r} (known: {known})")
        return table[value]

    def _stream_trackers(self, stream: str) -> dict[str, int]:
        """The trackers (name → id) whose issues a stream of issues carries."""
        trackers = self._lookup("trackers")
        if stream in TRACKER_STREAMS:
            wanted = {n: trackers[n] for n in TRACKER_STREAMS[stream] if n in trackers}
        else:
            claimed = {n for names in TRACKER_STREAMS.values() for n in names}
            wanted = {n: i for n, i in trackers.items() if n not in claimed}
        if not wanted:
            raise ConfigError(f"redmine: no tracker for stream {stream!r}")
        return wanted

    def _tracker_filter(self, stream: str) -> str:
        return "|".join(str(i) for i in sorted(self._stream_trackers(stream).values()))

    # -- reading -------------------------------------------------------------------------

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        if stream.cursor_field == "updated_on":
            return self._read_issues(stream, since=since, page_token=page_token)
        offset = int(page_token) if page_token else 0
        if stream.name == "versions":
            records = [self._shape_version(v) for v in self._all_versions()]
            return Page(records=records)
        if stream.name == "memberships":
            return Page(records=list(self._all_memberships()))
        path, key, params = {
            "projects": ("/projects.json", "projects", {"status": "", "include": "trackers"}),
            "time_entries": ("/time_entries.json", "time_entries", {"sort": "id"}),
            "users": ("/users.json", "users", {"status": ""}),
        }[stream.name]
        items, total = self.client.page(
            path, key, offset=offset, limit=stream.page_size, params=params
        )
        shape = {
            "projects": self._shape_project,
            "time_entries": self._shape_time_entry,
            "users": self._shape_user,
        }[stream.name]
        next_offset = offset + len(items)
        token = str(next_offset) if items and next_offset < total else None
        return Page(records=[shape(i) for i in items], next_token=token)

    def _read_issues(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        state = json.loads(page_token) if page_token else {}
        start = state.get("from") or (redmine_time(since) if since else None)
        skip = int(state.get("skip", 0))
        params: dict[str, Any] = {
            "status_id": "*",
            "tracker_id": self._tracker_filter(stream.name),
            "sort": "updated_on,id",
        }
        if start:
            params["updated_on"] = f">={start}"
        items, total = self.client.page(
            "/issues.json", "issues", offset=skip, limit=stream.page_size, params=params
        )
        records = [self._shape_issue(i) for i in items]
        if not items or skip + len(items) >= total:
            return Page(records=records, next_token=None)
        last = str(items[-1]["updated_on"])
        same_second = sum(1 for i in items if i["updated_on"] == last)
        # Continue from the last second seen; skip only what we read of that very second.
        skip_next = same_second + (skip if last == start else 0)
        token = json.dumps({"from": last, "skip": skip_next})
        return Page(records=records, next_token=token)

    def list_ids(self, stream: Stream) -> Iterable[str]:
        if stream.cursor_field == "updated_on":
            params = {"status_id": "*", "tracker_id": self._tracker_filter(stream.name)}
            last = 0
            while True:
                items, _ = self.client.page(
                    "/issues.json",
                    "issues",
                    limit=MAX_PAGE,
                    sort="id",
                    issue_id=f">={last + 1}",
                    params=params,
                )
                yield from (str(i["id"]) for i in items)
                if len(items) < MAX_PAGE:
                    return
                last = int(items[-1]["id"])
        else:
            yield from super().list_ids(stream)

    def _all_projects(self) -> list[dict[str, Any]]:
        return list(self.client.iter_all("/projects.json", "projects", status=""))

    def _all_versions(self) -> Iterator[dict[str, Any]]:
        seen: set[int] = set()
        for project in self._all_projects():
            body = self.client.get(f"/projects/{project['id']}/versions.json")
            for version in body.get("versions", []):
                # Shared versions show up under every project that sees them.
                if version["id"] not in seen:
                    seen.add(version["id"])
                    yield version

    def _all_memberships(self) -> Iterator[Record]:
        for project in self._all_projects():
            for m in self.client.iter_all(
                f"/projects/{project['id']}/memberships.json", "memberships"
            ):
                yield self._shape_membership(m)

    # -- shaping: Redmine JSON → flat records -------------------------------------------

    def _shape_project(self, p: Mapping[str, Any]) -> Record:
        status = {1: "active", 5: "closed", 9: "archived"}.get(int(p.get("status") or 1), "active")
        return {
            "id": int(p["id"]),
            "name": p.get("name"),
            "identifier": p.get("identifier"),
            "description": p.get("description"),
            "parent_id": str(_ref(p.get("parent")).get("id")) if p.get("parent") else None,
            "status": status,
            "is_public": p.get("is_public"),
            "created_on": p.get("created_on"),
            "updated_on": p.get("updated_on"),
        }

    def _shape_version(self, v: Mapping[str, Any]) -> Record:
        return {
            "id": int(v["id"]),
            "project_id": str(_ref(v.get("project")).get("id")),
            "name": v.get("name"),
            "description": v.get("description"),
            "status": v.get("status"),
            "due_date": v.get("due_date"),
            "sharing": v.get("sharing"),
            "created_on": v.get("created_on"),
            "updated_on": v.get("updated_on"),
        }

    def _shape_issue(self, i: Mapping[str, Any]) -> Record:
        custom = {str(f["name"]): f.get("value") for f in i.get("custom_fields", [])}
        status = _ref(i.get("status"))
        return {
            "id": int(i["id"]),
            "project_id": str(_ref(i.get("project")).get("id")),
            "project_name": _ref(i.get("project")).get("name"),
            "tracker": _ref(i.get("tracker")).get("name"),
            "status": status.get("name"),
            "is_closed": bool(status.get("is_closed", False)),
            "priority": _ref(i.get("priority")).get("name"),
            "subject": i.get("subject"),
            "description": i.get("description"),
            "author": _ref(i.get("author")).get("name"),
            "assigned_to_id": (
                str(_ref(i.get("assigned_to")).get("id")) if i.get("assigned_to") else None
            ),
            "assigned_to": _ref(i.get("assigned_to")).get("name"),
            "version_id": (
                str(_ref(i.get("fixed_version")).get("id")) if i.get("fixed_version") else None
            ),
            "parent_id": str(_ref(i.get("parent")).get("id")) if i.get("parent") else None,
            "start_date": i.get("start_date"),
            "due_date": i.get("due_date"),
            "done_ratio": i.get("done_ratio"),
            "estimated_hours": i.get("estimated_hours"),
            "spent_hours": i.get("spent_hours"),
            "effort_hours": _float_or_none(custom.get(self.effort_field)),
            "price": _float_or_none(custom.get(self.price_field)),
            "spojka_key": custom.get(self.key_field) or None,
            "custom_fields": {k: v for k, v in custom.items() if k not in (self.key_field,)},
            "created_on": i.get("created_on"),
            "updated_on": i.get("updated_on"),
            "closed_on": i.get("closed_on"),
        }

    def _shape_time_entry(self, t: Mapping[str, Any]) -> Record:
        return {
            "id": int(t["id"]),
            "project_id": str(_ref(t.get("project")).get("id")),
            "issue_id": str(_ref(t.get("issue")).get("id")) if t.get("issue") else None,
            "user_id": str(_ref(t.get("user")).get("id")),
            "user": _ref(t.get("user")).get("name"),
            "activity": _ref(t.get("activity")).get("name"),
            "hours": t.get("hours"),
            "comments": t.get("comments"),
            "spent_on": t.get("spent_on"),
            "created_on": t.get("created_on"),
            "updated_on": t.get("updated_on"),
        }

    def _shape_membership(self, m: Mapping[str, Any]) -> Record:
        user = _ref(m.get("user")) or _ref(m.get("group"))
        return {
            "id": int(m["id"]),
            "project_id": str(_ref(m.get("project")).get("id")),
            "user_id": str(user.get("id")) if user else None,
            "name": user.get("name"),
            "roles": [r["name"] for r in m.get("roles", [])],
            "updated_on": None,
        }

    def _shape_user(self, u: Mapping[str, Any]) -> Record:
        # No "status": Redmine's user list does not carry it (only one user's page does),
        # and a listing and a read by id must give the same record.
        return {
            "id": int(u["id"]),
            "login": u.get("login"),
            "firstname": u.get("firstname"),
            "lastname": u.get("lastname"),
            "mail": u.get("mail"),
            "admin": u.get("admin"),
            "created_on": u.get("created_on"),
            "updated_on": u.get("updated_on"),
        }

    def fetch(self, stream: Stream, external_id: str) -> Record | None:
        """One record by id in the stream's shape (None when it no longer exists)."""
        path, key, shape = {
            "projects": ("/projects/{}.json", "project", self._shape_project),
            "versions": ("/versions/{}.json", "version", self._shape_version),
            "tasks": ("/issues/{}.json", "issue", self._shape_issue),
            "change_requests": ("/issues/{}.json", "issue", self._shape_issue),
            "support_tickets": ("/issues/{}.json", "issue", self._shape_issue),
            "time_entries": ("/time_entries/{}.json", "time_entry", self._shape_time_entry),
            "users": ("/users/{}.json", "user", self._shape_user),
            "memberships": ("/memberships/{}.json", "membership", self._shape_membership),
        }[stream.name]
        try:
            body = self.client.get(path.format(external_id))
        except NotFoundError:
            return None
        return shape(body[key])

    def read_one(self, stream: Stream, external_id: str) -> Record | None:
        """One GET by id, shaped as :meth:`read_page` shapes it; None when Redmine has no such
        record in this stream (an issue of another tracker belongs to another stream)."""
        if not external_id.isdigit():
            return None  # Redmine's ids are numbers: nothing else can exist
        record = self.fetch(stream, external_id)
        if (
            record is not None
            and stream.cursor_field == "updated_on"
            and record["tracker"] not in self._stream_trackers(stream.name)
        ):
            return None
        return record

    # -- deleting ------------------------------------------------------------------------

    def delete(self, stream: Stream, external_id: str, *, idempotency_key: str) -> WriteResult:
        """Delete an issue, a time entry or a version; one already gone is a success.

        Redmine deletes an issue's subtasks and logged time with it, without asking over the
        API: such an issue is refused (``PermanentError``) so a person decides. A version
        still used by issues is refused by Redmine itself.
        """
        if not stream.supports_deletes:
            return super().delete(stream, external_id, idempotency_key=idempotency_key)
        if not external_id.isdigit():
            return WriteResult(external_id=external_id, already_gone=True)
        if stream.cursor_field == "updated_on":
            try:
                issue = self.client.get(f"/issues/{external_id}.json", include="children")["issue"]
            except NotFoundError:
                return WriteResult(external_id=external_id, already_gone=True)
            self._refuse_destructive_issue_delete(issue)
            path = f"/issues/{external_id}.json"
        elif stream.name == "time_entries":
            path = f"/time_entries/{external_id}.json"
        else:
            path = f"/versions/{external_id}.json"
        try:
            self.client.delete(path)
        except NotFoundError:
            return WriteResult(external_id=external_id, already_gone=True)
        except ValidationError as exc:
            if stream.name != "versions":
                raise
            raise PermanentError(
                f"redmine: version {external_id} cannot be deleted: Redmine refuses while "
                "issues use it (or it has files or is shared); move them to another version "
                "or close the version in Redmine",
                detail=exc.detail,
            ) from exc
        return WriteResult(external_id=external_id)

    @staticmethod
    def _refuse_destructive_issue_delete(issue: Mapping[str, Any]) -> None:
        number = issue["id"]
        children = [f"#{c['id']}" for c in issue.get("children") or []]
        if children:
            raise PermanentError(
                f"redmine: issue #{number} has subtasks ({', '.join(children)}); deleting it "
                "would delete them too. Delete or move them in Redmine first",
                detail={"issue": number, "children": children},
            )
        spent = _float_or_none(issue.get("total_spent_hours")) or _float_or_none(
            issue.get("spent_hours")
        )
        if spent:
            raise PermanentError(
                f"redmine: issue #{number} has {spent:g} h of logged time; deleting it would "
                "delete the time too. Move or delete the time entries in Redmine first",
                detail={"issue": number, "spent_hours": spent},
            )

    # -- writing -------------------------------------------------------------------------

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        if stream.name == "projects":
            return self._write_project(record, external_id, idempotency_key)
        if stream.name == "versions":
            return self._write_version(record, external_id)
        if stream.name in ("tasks", "change_requests", "support_tickets"):
            return self._write_issue(stream, record, external_id, idempotency_key)
        if stream.name == "time_entries":
            return self._write_time_entry(record, external_id, idempotency_key)
        if stream.name == "memberships":
            return self._write_membership(record)
        raise PermanentError(f"redmine: stream {stream.name!r} is read-only")

    def _key_field_id(self, kind: str) -> int | None:
        return self._lookup(kind).get(self.key_field)

    def _issue_values(self, record: Mapping[str, Any], stream: Stream | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in ("subject", "description", "start_date", "due_date", "done_ratio", "notes"):
            if record.get(name) is not None:
                values[name] = record[name]
        if record.get("private_notes"):
            values["private_notes"] = True
        if record.get("estimated_hours") is not None:
            values["estimated_hours"] = float(record["estimated_hours"])
        if record.get("status"):
            values["status_id"] = self._id_of("statuses", record["status"])
        if record.get("tracker"):
            values["tracker_id"] = self._id_of("trackers", record["tracker"])
        elif stream is not None and stream.name in TRACKER_STREAMS:
            values["tracker_id"] = self._id_of("trackers", TRACKER_STREAMS[stream.name][0])
        elif stream is not None and stream.name == "tasks":
            trackers = self._lookup("trackers")
            if "Task" in trackers:
                values["tracker_id"] = trackers["Task"]
        if record.get("assigned_to_id"):
            values["assigned_to_id"] = int(record["assigned_to_id"])
        elif record.get("assigned_to_login"):
            values["assigned_to_id"] = self._id_of("users", record["assigned_to_login"])
        if record.get("version_id"):
            values["fixed_version_id"] = int(record["version_id"])
        if record.get("parent_id"):
            values["parent_issue_id"] = int(record["parent_id"])
        fields = self._lookup("issue_fields")
        custom = []
        for source, name in (("effort_hours", self.effort_field), ("price", self.price_field)):
            if record.get(source) is not None and name in fields:
                custom.append({"id": fields[name], "value": str(record[source])})
        if custom:
            values["custom_fields"] = custom
        return values

    def _find_issue_by_key(self, key: str) -> dict[str, Any] | None:
        field = self._key_field_id("issue_fields")
        if field is None:
            return None
        items, _ = self.client.page(
            "/issues.json", "issues", limit=1, status_id="*", params={f"cf_{field}": key}
        )
        return items[0] if items else None

    def _write_issue(
        self, stream: Stream, record: Mapping[str, Any], external_id: str | None, key: str
    ) -> WriteResult:
        values = self._issue_values(record, stream)
        if external_id is not None:
            if not record.get("tracker"):
                values.pop("tracker_id", None)  # an update keeps the issue's tracker
            self.client.update_issue(int(external_id), values)
            return self._issue_result(external_id, created=False)
        existing = self._find_issue_by_key(key)
        if existing is not None:
            return WriteResult(
                external_id=str(existing["id"]), version=existing.get("updated_on"), created=False
            )
        if not record.get("project_id"):
            raise ValidationError("redmine: an issue needs project_id")
        values["project_id"] = record["project_id"]
        values.pop("notes", None)
        field = self._key_field_id("issue_fields")
        if field is not None:
            values.setdefault("custom_fields", []).append({"id": field, "value": key})
        issue = self.client.create_issue(values)
        notes = record.get("notes")
        if notes:
            self.client.add_note(int(issue["id"]), str(notes))
            return self._issue_result(str(issue["id"]), created=True)
        return WriteResult(
            external_id=str(issue["id"]), version=issue.get("updated_on"), created=True
        )

    def _issue_result(self, external_id: str, *, created: bool) -> WriteResult:
        body = self.client.get(f"/issues/{external_id}.json")["issue"]
        return WriteResult(external_id=external_id, version=body.get("updated_on"), created=created)

    def _write_time_entry(
        self, record: Mapping[str, Any], external_id: str | None, key: str
    ) -> WriteResult:
        values: dict[str, Any] = {}
        if record.get("hours") is not None:
            values["hours"] = float(record["hours"])
        for name in ("spent_on", "comments"):
            if record.get(name) is not None:
                values[name] = record[name]
        if record.get("activity"):
            values["activity_id"] = self._id_of("activities", record["activity"])
        if record.get("user_id"):
            values["user_id"] = int(record["user_id"])
        elif record.get("user_login"):
            values["user_id"] = self._id_of("users", record["user_login"])
        if external_id is not None:
            self.client.put(f"/time_entries/{external_id}.json", {"time_entry": values})
            body = self.client.get(f"/time_entries/{external_id}.json")["time_entry"]
            return WriteResult(external_id=external_id, version=body.get("updated_on"))
        field = self._key_field_id("time_entry_fields")
        if field is not None:
            items, _ = self.client.page(
                "/time_entries.json", "time_entries", limit=1, params={f"cf_{field}": key}
            )
            if items:
                return WriteResult(
                    external_id=str(items[0]["id"]), version=items[0].get("updated_on")
                )
            values["custom_fields"] = [{"id": field, "value": key}]
        if record.get("issue_id"):
            values["issue_id"] = int(record["issue_id"])
        elif record.get("project_id"):
            values["project_id"] = record["project_id"]
        else:
            raise ValidationError("redmine: a time entry needs issue_id or project_id")
        if "hours" not in values:
            raise ValidationError("redmine: a time entry needs hours")
        if "activity_id" not in values:
            activities = self._lookup("activities")
            if activities:
                values["activity_id"] = next(iter(activities.values()))
        entry = self.client.log_time(values)
        return WriteResult(
            external_id=str(entry["id"]), version=entry.get("updated_on"), created=True
        )

    def _write_version(self, record: Mapping[str, Any], external_id: str | None) -> WriteResult:
        values = {
            k: record[k]
            for k in ("name", "description", "status", "due_date", "sharing")
            if record.get(k) is not None
        }
        if external_id is not None:
            self.client.put(f"/versions/{external_id}.json", {"version": values})
            body = self.client.get(f"/versions/{external_id}.json")["version"]
            return WriteResult(external_id=external_id, version=body.get("updated_on"))
        project = record.get("project_id")
        if not project:
            raise ValidationError("redmine: a version needs project_id")
        for version in self.client.get(f"/projects/{project}/versions.json").get("versions", []):
            if version["name"] == record.get("name"):
                return WriteResult(
                    external_id=str(version["id"]), version=version.get("updated_on")
                )
        created = self.client.create_version(project, values)
        return WriteResult(
            external_id=str(created["id"]), version=created.get("updated_on"), created=True
        )

    def _write_membership(self, record: Mapping[str, Any]) -> WriteResult:
        project = record.get("project_id")
        user = record.get("user_id") or (
            self._id_of("users", record["login"]) if record.get("login") else None
        )
        if not project or not user:
            raise ValidationError("redmine: a membership needs project_id and user_id (or login)")
        roles = [self._id_of("roles", r) for r in record.get("roles") or ["Developer"]]
        for m in self.client.iter_all(f"/projects/{project}/memberships.json", "memberships"):
            if str(_ref(m.get("user")).get("id")) == str(user):
                return WriteResult(external_id=str(m["id"]))
        created = self.client.add_membership(project, int(user), roles)
        return WriteResult(external_id=str(created["id"]), created=True)

    def _template(self, record: Mapping[str, Any]) -> dict[str, Any]:
        template = record.get("template")
        if template is None:
            return {}
        if isinstance(template, Mapping):
            return dict(template)
        configured = (self.config.get("templates") or {}).get(str(template))
        return dict(configured) if configured else load_template(str(template))

    def _write_project(
        self, record: Mapping[str, Any], external_id: str | None, key: str
    ) -> WriteResult:
        """Create a project (from a template: versions, issues, members) or update one.

        Resumable: the identifier comes from the idempotency key, versions are matched by
        name, issues by their Spojka ID and members by user, so a retry after a crash
        finishes the same project instead of starting a second one.
        """
        values = {
            k: record[k]
            for k in ("name", "description", "homepage", "is_public")
            if record.get(k) is not None
        }
        if external_id is not None:
            self.client.put(f"/projects/{external_id}.json", {"project": values})
            body = self.client.get(f"/projects/{external_id}.json")["project"]
            return WriteResult(external_id=external_id, version=body.get("updated_on"))
        if not record.get("name"):
            raise ValidationError("redmine: a project needs a name")
        template = self._template(record)
        identifier = record.get("identifier") or f"{slug(str(record['name']))}-{key[:8].lower()}"
        values["identifier"] = identifier
        if record.get("parent_id"):
            values["parent_id"] = int(record["parent_id"])
        trackers = template.get("trackers")
        if trackers:
            values["tracker_ids"] = [self._id_of("trackers", t) for t in trackers]
        created = True
        try:
            project = self.client.create_project(values)
        except ValidationError as exc:
            if not any("Identifier has already been taken" in e for e in exc.detail["errors"]):
                raise
            project = self.client.get(f"/projects/{identifier}.json")["project"]
            created = False
        project_id = str(project["id"])
        self._apply_template(project_id, template, record, key)
        body = self.client.get(f"/projects/{project_id}.json")["project"]
        return WriteResult(external_id=project_id, version=body.get("updated_on"), created=created)

    def _apply_template(
        self, project_id: str, template: Mapping[str, Any], record: Mapping[str, Any], key: str
    ) -> None:
        versions: dict[str, str] = {}
        for version in template.get("versions") or []:
            result = self._write_version({**version, "project_id": project_id}, None)
            versions[str(version["name"])] = result.external_id
        members = list(template.get("members") or []) + list(record.get("members") or [])
        for member in members:
            self._write_membership({**member, "project_id": project_id})
        for index, issue in enumerate(template.get("issues") or []):
            data = dict(issue)
            if data.get("version"):
                data["version_id"] = versions.get(str(data.pop("version")))
            data["project_id"] = project_id
            stream = self.stream(
                "change_requests" if data.get("tracker") == "Change request" else "tasks"
            )
            self._write_issue(stream, data, None, f"{key}:{index}")
        for sub in template.get("subprojects") or []:
            self._write_project(
                {**sub, "parent_id": project_id}, None, f"{key}-{slug(str(sub['name']))}"
            )

    # -- health --------------------------------------------------------------------------

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            user = self.client.current_user()
            self.client.page("/projects.json", "projects", limit=1)
        except SpojkaError as exc:
            return Health(ok=False, detail=exc.message)
        return Health(
            ok=True,
            detail=f"Redmine answers; API key of {user.get('login')!r}",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            extra={"admin": bool(user.get("admin"))},
        )

    def close(self) -> None:
        self.client.close()
