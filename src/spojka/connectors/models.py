"""The shapes of ``/api/v1/connections``: a connection as an administrator writes and reads it.

Credentials are given **by reference only** (``env:NAME``, ``file:/path``, ``db:NAME``): an
inline value in a request is refused with a 422 naming the field, so a secret never travels
in, or is echoed by, the API. (The CLI ``spojka sync connect`` still accepts an inline value
and moves it into the encrypted store at once, as a ``db:`` reference.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spojka.governance.secret_store import REFERENCE_PREFIXES, SECRET_CONFIG_KEYS

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,79}$"
_CREDENTIAL_SUFFIXES = ("password", "secret", "_token", "api_key")


def is_credential(key: str) -> bool:
    """Whether a connection setting holds a credential (kept only as a reference)."""
    return key in SECRET_CONFIG_KEYS or key.endswith(_CREDENTIAL_SUFFIXES)


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(REFERENCE_PREFIXES)


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_s: float = Field(gt=0, description="Calls per second to the system, at most")
    burst: float = Field(10.0, gt=0, description="Calls allowed at once after a quiet spell")


class Ownership(BaseModel):
    """This connection is the source of truth of an entity (``field="*"``) or of one field."""

    model_config = ConfigDict(extra="forbid")

    entity: str = Field(min_length=1, max_length=60, examples=["Account"])
    field: str = Field("*", min_length=1, max_length=80, examples=["ico"])
    on_violation: Literal["conflict", "reject"] = "conflict"


class ConnectionBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="Connector kind (system type), see `spojka connectors list`")
    url: str | None = Field(None, description="Base URL of the system's API")
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="Credential settings by reference only: env:NAME, file:/path or db:NAME",
        examples=[{"api_key": "env:REDMINE_API_KEY"}],
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Other connector settings (no credentials)"
    )
    rate_limit: RateLimit | None = None
    polling_interval_s: float | None = Field(None, ge=1, description="Seconds between polls")
    owns: list[Ownership] | None = Field(
        None, description="Entities/fields this connection owns; given = replaces the old list"
    )


class ConnectionCreate(ConnectionBase):
    """``POST /api/v1/connections``: create the connection, or replace one of that name."""

    name: str = Field(pattern=NAME_PATTERN, examples=["pm"])
    mapping: str | None = Field(None, description="Mapping YAML (checked before it is stored)")


class PollingRead(BaseModel):
    """When Spojka polls the connection (only with ``polling_interval_s``; read only)."""

    last_poll_at: datetime | None = Field(
        None, description="The last poll: started by the runtime or finished by `spojka sync run`"
    )
    last_outcome: str | None = Field(
        None, description="Of the last poll the runtime ran: running, automated, failed, …"
    )
    last_error: str | None = Field(None, description="Why the last finished poll failed")
    failures: int = Field(
        0, description="Consecutive failed polls; from the second the wait doubles, to 15 min"
    )
    next_poll_at: datetime | None = Field(
        None, description="When the next poll is due; none without polling_interval_s"
    )


class ConnectionRead(ConnectionBase):
    """A stored connection; credentials appear as their references, never as values."""

    name: str
    mapping: str | None = Field(None, description="Label of the stored mapping")
    polling: PollingRead = Field(default_factory=PollingRead)
    created_at: datetime | None = None
    updated_at: datetime | None = None
