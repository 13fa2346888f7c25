"""The one exception tree of Spojka.

Connectors map an external system's failures onto these classes at their edge, so the
rest of the code decides retry / dead-letter / conflict by class alone.
"""

from __future__ import annotations

from typing import Any


class SpojkaError(Exception):
    """Base of every error Spojka raises on purpose."""

    status_code = 500
    title = "Internal error"
    code = "internal"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class TransientError(SpojkaError):
    """Worth retrying later: timeouts, 429, 5xx, a peer that is down."""

    status_code = 503
    title = "Temporarily unavailable"
    code = "transient"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class PermanentError(SpojkaError):
    """Retrying will not help; the item goes to the dead-letter queue."""

    status_code = 422
    title = "Permanent failure"
    code = "permanent"


class ValidationError(PermanentError):
    """Input is wrong; the caller gets a clear message naming the field."""

    status_code = 400
    title = "Invalid input"
    code = "validation"


class NotFoundError(PermanentError):
    status_code = 404
    title = "Not found"
    code = "not_found"


class ConflictError(SpojkaError):
    """Two sources disagree, or the object is in a state that forbids the action."""

    status_code = 409
    title = "Conflict"
    code = "conflict"


class AuthError(SpojkaError):
    """Missing or invalid credentials (401) or not allowed (403)."""

    status_code = 401
    title = "Unauthorized"
    code = "auth"


class ForbiddenError(AuthError):
    status_code = 403
    title = "Forbidden"
    code = "forbidden"


class ConfigError(SpojkaError):
    """A setting is wrong or missing; start-up stops with one line naming it."""

    title = "Configuration error"
    code = "config"
