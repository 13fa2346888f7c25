"""Sync tables (see migrations/sync_0001.py) and the pydantic shapes the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Mapped, mapped_column

from spojka.core.db import Base

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Connection(Base):
    """One configured external system (a CRM instance, a folder of files…)."""

    __tablename__ = "sync_connection"
    name: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(60))
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    mapping_yaml: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Ownership(Base):
    __tablename__ = "sync_ownership"
    __table_args__ = (sa.UniqueConstraint("entity", "field", name="uq_sync_ownership"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(60))
    field: Mapped[str] = mapped_column(sa.String(80))
    owner: Mapped[str] = mapped_column(sa.String(80))
    on_violation: Mapped[str] = mapped_column(sa.String(10))


class Cursor(Base):
    __tablename__ = "sync_cursor"
    connection: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    stream: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    cursor_value: Mapped[str | None] = mapped_column(sa.String(64))
    run_since: Mapped[str | None] = mapped_column(sa.String(64))
    run_max: Mapped[str | None] = mapped_column(sa.String(64))
    page_token: Mapped[str | None] = mapped_column(sa.String(200))
    records_total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_change_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_run_records: Mapped[int | None]
    last_run_seconds: Mapped[float | None]


class PollState(Base):
    """The last poll of a connection run by the runtime (``sync.run``): what the polling
    schedule reads to know when the connection is due again."""

    __tablename__ = "sync_poll_state"
    connection: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    workflow_id: Mapped[str | None] = mapped_column(sa.String(200))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    error: Mapped[str | None] = mapped_column(sa.Text)
    failures: Mapped[int] = mapped_column(default=0)  # consecutive failed polls


class Link(Base):
    __tablename__ = "sync_link"
    __table_args__ = (
        sa.UniqueConstraint("system", "entity", "external_id", name="uq_sync_link_external"),
        sa.Index("ix_sync_link_canonical", "canonical_id", "system"),
    )
    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(sa.String(80))
    entity: Mapped[str] = mapped_column(sa.String(60))
    external_id: Mapped[str] = mapped_column(sa.String(200))
    canonical_id: Mapped[str] = mapped_column(sa.String(32))
    source_version: Mapped[str | None] = mapped_column(sa.String(64))
    source_hash: Mapped[str | None] = mapped_column(sa.String(40))
    written_version: Mapped[str | None] = mapped_column(sa.String(64))
    written_hash: Mapped[str | None] = mapped_column(sa.String(40))
    synced_version: Mapped[int | None]
    updated_at: Mapped[datetime]


class Record(Base):
    """The current canonical state of one entity instance."""

    __tablename__ = "sync_record"
    canonical_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(60))
    version: Mapped[int]
    data: Mapped[str] = mapped_column(sa.Text)
    data_hash: Mapped[str] = mapped_column(sa.String(40))
    mapping_version: Mapped[str | None] = mapped_column(sa.String(120))
    source_system: Mapped[str] = mapped_column(sa.String(80))
    deleted: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class RecordVersion(Base):
    __tablename__ = "sync_record_version"
    canonical_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(sa.Text)
    source_system: Mapped[str] = mapped_column(sa.String(80))
    mapping_version: Mapped[str | None] = mapped_column(sa.String(120))
    changed_at: Mapped[datetime]


class Conflict(Base):
    __tablename__ = "sync_conflict"
    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(60))
    canonical_id: Mapped[str] = mapped_column(sa.String(32))
    field: Mapped[str] = mapped_column(sa.String(80))
    kind: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20))
    current_value: Mapped[str | None] = mapped_column(sa.Text)
    current_source: Mapped[str | None] = mapped_column(sa.String(80))
    current_at: Mapped[datetime | None]
    incoming_value: Mapped[str | None] = mapped_column(sa.Text)
    incoming_system: Mapped[str] = mapped_column(sa.String(80))
    incoming_version: Mapped[str | None] = mapped_column(sa.String(64))
    incoming_at: Mapped[datetime]
    resolution: Mapped[str | None] = mapped_column(sa.Text)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(120))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Delivery(Base):
    """Outbox: one write of a canonical record to a target connection."""

    __tablename__ = "sync_delivery"
    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(sa.String(80))
    stream: Mapped[str] = mapped_column(sa.String(120))
    entity: Mapped[str] = mapped_column(sa.String(60))
    canonical_id: Mapped[str] = mapped_column(sa.String(32))
    canonical_version: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source_event: Mapped[str] = mapped_column(sa.String(400))
    status: Mapped[str] = mapped_column(sa.String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[float]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    trace_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeadLetter(Base):
    __tablename__ = "sync_dlq"
    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(sa.String(80))
    stream: Mapped[str | None] = mapped_column(sa.String(120))
    entity: Mapped[str | None] = mapped_column(sa.String(60))
    direction: Mapped[str] = mapped_column(sa.String(10))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    canonical_id: Mapped[str | None] = mapped_column(sa.String(32))
    delivery_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(64))
    payload: Mapped[str | None] = mapped_column(sa.Text)
    response: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str] = mapped_column(sa.Text)
    error_class: Mapped[str] = mapped_column(sa.String(60))
    mapping_version: Mapped[str | None] = mapped_column(sa.String(120))
    attempts: Mapped[int] = mapped_column(default=0)
    trace_id: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEvent(Base):
    __tablename__ = "sync_webhook_event"
    __table_args__ = (
        sa.UniqueConstraint("connection", "event_id", name="uq_sync_webhook_event"),
        sa.Index("ix_sync_webhook_status", "status", "id"),
    )
    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    connection: Mapped[str] = mapped_column(sa.String(80))
    event_id: Mapped[str] = mapped_column(sa.String(200))
    stream: Mapped[str] = mapped_column(sa.String(120))
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    trace_id: Mapped[str | None] = mapped_column(sa.String(32))
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[float | None]  # unix time; an id-only event's fetch is retried


class RateBucket(Base):
    __tablename__ = "sync_rate_bucket"
    connection: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    tokens: Mapped[float]
    updated_at: Mapped[float]


# -- API shapes ---------------------------------------------------------------------------


class ConflictRead(BaseModel):
    id: int
    entity: str
    canonical_id: str
    field: str
    kind: str
    status: str
    current_value: Any
    current_source: str | None
    current_at: datetime | None
    incoming_value: Any
    incoming_system: str
    incoming_at: datetime
    resolution: Any = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class ConflictResolve(BaseModel):
    """Pick a side (``current`` / ``incoming``) or enter a ``value``."""

    pick: str | None = None
    value: Any = None
    reason: str | None = None


class DeadLetterRead(BaseModel):
    id: int
    connection: str
    stream: str | None
    entity: str | None
    direction: str
    external_id: str | None
    canonical_id: str | None
    payload: Any
    response: str | None
    error: str
    error_class: str
    mapping_version: str | None
    attempts: int
    trace_id: str | None
    status: str
    created_at: datetime
