"""HTTP plumbing shared by the connectors that speak JSON over HTTP (the SaaS ones, Redmine).

One httpx client per connection; every failure leaves as one of Spojka's errors through
:func:`spojka.connectors.base.classify_status` (401 → ``AuthError``, 403 →
``ForbiddenError``, 404 → ``NotFoundError``, 400/422 → ``ValidationError`` with the vendor's
message, 409 → ``ConflictError``, 429/5xx/refused/timeouts → ``TransientError`` with
``retry_after`` from ``Retry-After``). Request and response bodies are never logged (they
carry personal data); a log line names the system, method, path, status and duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from spojka.connectors.base import classify_status
from spojka.core.errors import ConfigError, TransientError
from spojka.core.logging import get_logger
from spojka.core.tracing import outgoing_headers

log = get_logger("spojka.connectors.saas")

MessageOf = Callable[[httpx.Response], str]


def message_of(response: httpx.Response) -> str:
    """The vendor's own explanation of a refusal, from the usual places in a JSON body."""
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
    """Stateless JSON calls against one vendor API; ``auth_headers`` is asked on every call.

    ``wording`` overrides what a status says (e.g. ``{401: "API key rejected"}``, see
    :func:`~spojka.connectors.base.classify_status`); ``message_of`` finds the vendor's
    explanation in a refusal; ``error_detail`` adds structured detail (field errors).
    """

    def __init__(
        self,
        url: str,
        *,
        system: str,
        auth_headers: Callable[[], Mapping[str, str]],
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        wording: Mapping[int, str] | None = None,
        message_of: MessageOf = message_of,
        error_detail: Callable[[httpx.Response], Mapping[str, Any]] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.system = system
        self._auth_headers = auth_headers
        self._wording = dict(wording or {})
        self._message_of = message_of
        self._error_detail = error_detail
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
            raise TransientError(f"{self.system} at {self.url} timed out on {what}") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{self.system} at {self.url} is unreachable ({type(exc).__name__})",
                retry_after=5.0,
            ) from exc
        except UnicodeEncodeError:
            # httpx sends headers as ASCII: a credential with other characters cannot go out.
            raise ConfigError(
                f"{self.system}: a credential or header holds non-ASCII characters; "
                "check the connection's credentials"
            ) from None
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
        """Raise the Spojka error of an unsuccessful answer (nothing for a success)."""
        if response.status_code < 400:
            return
        transient = response.status_code in (408, 429) or response.status_code >= 500
        error = classify_status(
            response.status_code,
            headers=response.headers,
            system=self.system,
            what=what,
            message="" if transient else self._message_of(response),
            wording=self._wording,
            detail=self._error_detail(response) if self._error_detail else None,
        )
        if error is not None:
            raise error


def saas_client(
    config: Mapping[str, Any],
    *,
    kind: str,
    system: str,
    required: Sequence[str],
    default_url: str,
    auth_headers: Callable[[], Mapping[str, str]],
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> SaasClient:
    """The client of one connection. Missing settings are named on the first call, not here,
    so ``spojka connectors list`` can read a connector's declaration without credentials."""
    missing = [key for key in required if not config.get(key)]

    def checked() -> Mapping[str, str]:
        if missing:
            raise ConfigError(f"{kind}: connection lacks {', '.join(missing)}")
        return auth_headers()

    return SaasClient(
        str(config.get("url") or default_url),
        system=system,
        auth_headers=checked,
        timeout=float(config.get("timeout") or 30.0),
        transport=transport,
        headers=headers,
    )
