"""Token authentication and role guards for every API route."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.core.errors import AuthError, ForbiddenError, SpojkaError
from spojka.governance import tokens
from spojka.governance.models import Role

ALL_ROLES = frozenset(Role)
READ = ALL_ROLES
APPROVE = frozenset({Role.approver, Role.finance, Role.admin})
OPERATE = frozenset({Role.integrator, Role.admin})
AUDIT = frozenset({Role.auditor, Role.admin})
ADMIN = frozenset({Role.admin})

# Paths answered without a token. Webhook receivers authenticate by signature instead.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/"})
SIGNATURE_AUTH_PREFIXES = ("/api/v1/webhooks/",)


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: Role


class _TokenCache:
    """Remembers verified tokens briefly so each request need not read the database."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            return item[1]

    def put(self, key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


token_cache = _TokenCache()


def get_app(request: Request) -> Spojka:
    app: Spojka = request.app.state.spojka
    return app


def get_session(request: Request) -> Iterator[Session]:
    """A session per request that commits when the handler returns normally."""
    with transaction(get_app(request).sessions) as session:
        yield session


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="SpojkaToken",
    description="An API token from `spojka token create`; the scopes are the roles allowed.",
)


def _lookup(app: Spojka, value: str) -> Principal:
    with app.sessions() as session:
        token = tokens.authenticate(session, value)
        return Principal(token.id, token.name, Role(token.role))


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise AuthError("missing API token: send 'Authorization: Bearer <token>'")
    value = credentials.credentials.strip()
    key = hashlib.sha256(value.encode()).hexdigest()
    principal = token_cache.get(key)
    if principal is None:
        # Only a cache miss touches the database, off the event loop.
        principal = await run_in_threadpool(_lookup, get_app(request), value)
        token_cache.put(key, principal)
    request.state.principal = principal
    return principal


class RoleGuard:
    """A dependency that lets through only the given roles; the route table test finds it."""

    def __init__(self, allowed: frozenset[Role]) -> None:
        self.allowed = allowed

    # async: a sync dependency costs every request a hop through the thread pool.
    async def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    ) -> Principal:
        principal = await authenticate(request, credentials)
        if principal.role not in self.allowed:
            needed = ", ".join(sorted(r.value for r in self.allowed))
            raise ForbiddenError(
                f"role {principal.role.value!r} may not do this; needs one of: {needed}"
            )
        return principal


def require(allowed: frozenset[Role]) -> Principal:
    """Use as ``principal: Principal = require(APPROVE)`` in a route signature.

    The allowed roles appear in the OpenAPI document as the scopes of the requirement.
    """
    result: Principal = Security(RoleGuard(allowed), scopes=sorted(r.value for r in allowed))
    return result


__all__ = [
    "ADMIN",
    "APPROVE",
    "AUDIT",
    "OPERATE",
    "READ",
    "Principal",
    "RoleGuard",
    "SpojkaError",
    "get_session",
    "require",
]
