"""API tokens: shown once at creation, only a SHA-256 of them is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core.db import utcnow
from spojka.core.errors import AuthError, ConflictError, NotFoundError, ValidationError
from spojka.governance import audit
from spojka.governance.models import ApiToken, Role

TOKEN_PREFIX = "spk_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    session: Session, *, name: str, role: Role | str, actor: str = "cli"
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token, which is never stored."""
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(f"unknown role {role!r}; choose one of: {allowed}") from None
    name = name.strip()
    if not name:
        raise ValidationError("token name must not be empty")
    if session.scalar(sa.select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise ConflictError(f"a token named {name!r} already exists")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken(name=name, role=role.value, prefix=prefix, token_hash=_digest(secret))
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        object_type="api_token",
        object_id=str(token.id),
        after={"name": name, "role": role.value, "prefix": prefix},
    )
    return token, f"{TOKEN_PREFIX}{prefix}_{secret}"


def authenticate(session: Session, plain: str) -> ApiToken:
    """Return the live token for a presented secret, or raise AuthError."""
    if not plain.startswith(TOKEN_PREFIX) or plain.count("_") < 2:
        raise AuthError("invalid API token")
    prefix, _, secret = plain.removeprefix(TOKEN_PREFIX).partition("_")
    token = session.scalar(sa.select(ApiToken).where(ApiToken.prefix == prefix))
    if token is None or not hmac.compare_digest(token.token_hash, _digest(secret)):
        raise AuthError("invalid API token")
    if token.revoked_at is not None:
        raise AuthError("API token has been revoked")
    return token


def revoke(session: Session, *, token_id: int, actor: str) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            object_type="api_token",
            object_id=str(token.id),
            before={"revoked": False},
            after={"revoked": True},
        )
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(sa.select(ApiToken).order_by(ApiToken.id)).scalars())
