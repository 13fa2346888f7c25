"""A small REST client for Redmine 5.

Authentication by ``X-Redmine-API-Key``; lists page with ``limit``/``offset`` (Redmine caps
``limit`` at 100). The transport and the error mapping are the shared
:class:`~spojka.connectors.saas.SaasClient`'s: 401 → ``AuthError`` ("API key rejected"),
403 → ``ForbiddenError``, 404 → ``NotFoundError``, 422 → ``ValidationError`` with Redmine's
own messages, 429/5xx/refused/timeouts → ``TransientError`` with ``retry_after`` from the
``Retry-After`` header. Bodies are never logged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from spojka.connectors.saas import SaasClient

MAX_PAGE = 100
WORDING = {401: "API key rejected", 403: "the API key's user may not do {what}"}


def _errors_of(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list):
        return [str(e) for e in errors]
    return []


class RedmineClient:
    """Stateless REST calls against one Redmine with one API key."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = SaasClient(
            self.url,
            system="Redmine",
            auth_headers=lambda: {"X-Redmine-API-Key": api_key},
            timeout=timeout,
            transport=transport,
            wording=WORDING,
            message_of=lambda response: "; ".join(_errors_of(response)) or "rejected",
            error_detail=lambda response: {"errors": _errors_of(response)},
        )

    def __repr__(self) -> str:
        return f"RedmineClient(url={self.url!r}, api_key=***)"

    def __enter__(self) -> RedmineClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One call; returns the decoded JSON body (None for an empty answer)."""
        return self._http.request(method, path, params=params, json=json)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> None:
        self.request("PUT", path, json=body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    # -- lists -------------------------------------------------------------------------------

    def page(
        self,
        path: str,
        key: str,
        *,
        offset: int = 0,
        limit: int = MAX_PAGE,
        params: Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of a list endpoint: (items, total_count)."""
        query = {**(params or {}), **filters, "offset": offset, "limit": min(limit, MAX_PAGE)}
        body = self.get(path, **query)
        items = list(body.get(key, []))
        return items, int(body.get("total_count", len(items)))

    def iter_all(
        self, path: str, key: str, *, page_size: int = MAX_PAGE, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, page after page (offset paging)."""
        offset = 0
        while True:
            items, total = self.page(path, key, offset=offset, limit=page_size, **params)
            yield from items
            offset += len(items)
            if not items or offset >= total:
                return

    # -- a few named calls -------------------------------------------------------------------

    def current_user(self) -> dict[str, Any]:
        """Who the API key belongs to (the connection test's first call)."""
        return dict(self.get("/users/current.json")["user"])

    def create_project(self, project: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.post("/projects.json", {"project": dict(project)})["project"])

    def create_version(self, project: str | int, version: Mapping[str, Any]) -> dict[str, Any]:
        body = self.post(f"/projects/{project}/versions.json", {"version": dict(version)})
        return dict(body["version"])

    def add_membership(
        self, project: str | int, user_id: int, role_ids: list[int]
    ) -> dict[str, Any]:
        body = self.post(
            f"/projects/{project}/memberships.json",
            {"membership": {"user_id": user_id, "role_ids": role_ids}},
        )
        return dict(body["membership"])

    def create_issue(self, issue: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.post("/issues.json", {"issue": dict(issue)})["issue"])

    def update_issue(self, issue_id: int, changes: Mapping[str, Any]) -> None:
        self.put(f"/issues/{issue_id}.json", {"issue": dict(changes)})

    def add_note(self, issue_id: int, notes: str, *, private: bool = False) -> None:
        self.update_issue(issue_id, {"notes": notes, "private_notes": private})

    def log_time(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.post("/time_entries.json", {"time_entry": dict(entry)})["time_entry"])
