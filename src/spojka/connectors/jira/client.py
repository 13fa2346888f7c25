"""HTTP plumbing shared by the SaaS connectors: one httpx client, errors mapped at the edge.

Every failure leaves as one of Spojka's errors: 401 → ``AuthError``, 403 → ``ForbiddenError``,
404 → ``NotFoundError``, 400/422 → ``ValidationError`` (with the vendor's message), 409 →
``ConflictError``, 429/5xx/refused/timeouts → ``TransientError`` with ``retry_after`` from
``Retry-After``. Request and response bodies are never logged (they carry personal data).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from spojka.connectors.base import parse_retry_after
from spojka.core.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PermanentError,
    TransientError,
    ValidationError,
)
from spojka.core.logging import get_logger
from spojka.core.tracing import outgoing_headers

log = get_logger("spojka.connectors.saas")


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        checks = body.get("validation")  # a contract checker's (Prism's) problem details
        if isinstance(checks, list) and checks:
            return "; ".join(str(c.get("message", c)) for c in checks if isinstance(c, dict))[:300]
        for key in ("errorMessages", "errors", "Message", "message", "detail", "title"):
            value = body.get(key)
            if value:
                return str(value)[:300]
    return str(body)[:300]


class SaasClient:
    """Stateless JSON calls against one vendor API; ``auth_headers`` is asked on every call."""

    def __init__(
        self,
        url: str,
        *,
        system: str,
        auth_headers: Callable[[], Mapping[str, str]],
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.system = system
        self._auth_headers = auth_headers
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", **dict(headers or {})},
        )

    def __repr__(self) -> str:
        return f"SaasClient(system={self.system!r}, url={self.url!r}, credentials=***)"

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """One call; the decoded JSON body (None for an empty answer)."""
        what = f"{method} {path}"
        sent = {**outgoing_headers(), **dict(headers or {})}
        if authenticated:
            sent.update(self._auth_headers())
        started = time.perf_counter()
        try:
            response = self._http.request(method, path, params=params, json=json, headers=sent)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.system} timed out on {what}") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{self.system} at {self.url} is unreachable ({type(exc).__name__})",
                retry_after=5.0,
            ) from exc
        log.debug(
            "saas.http",
            system=self.system,
            method=method,
            path=path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        self.raise_for(response, what)
        if not response.content or not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(f"{self.system} answered {what} with non-JSON content") from exc

    def raise_for(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        name = self.system
        if status == 429 or status == 408 or status >= 500:
            raise TransientError(
                f"{status} from {name} on {what}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        message = _message_of(response)
        detail = {"status": status, "message": message}
        if status == 401:
            raise AuthError(f"401 from {name}: credentials rejected", detail=detail)
        if status == 403:
            raise ForbiddenError(f"403 from {name}: not allowed to {what}", detail=detail)
        if status == 404:
            raise NotFoundError(f"404 from {name}: {what} not found", detail=detail)
        if status == 409:
            raise ConflictError(f"409 from {name} on {what}: {message}", detail=detail)
        if status in (400, 422):
            raise ValidationError(f"{status} from {name} on {what}: {message}", detail=detail)
        raise PermanentError(f"{status} from {name} on {what}: {message}", detail=detail)
