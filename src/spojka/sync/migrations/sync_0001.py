"""sync: connections, cursors, links, canonical store with history, conflicts, outbox, DLQ,
webhook inbox, shared rate buckets

Revision ID: sync_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sync_0001"
down_revision = None
branch_labels = ("sync",)
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "sync_connection",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("mapping_yaml", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "sync_ownership",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("field", sa.String(80), nullable=False),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("on_violation", sa.String(10), nullable=False),
        sa.UniqueConstraint("entity", "field", name="uq_sync_ownership"),
    )
    op.create_table(
        "sync_cursor",
        sa.Column("connection", sa.String(80), primary_key=True),
        sa.Column("stream", sa.String(120), primary_key=True),
        sa.Column("cursor_value", sa.String(64)),
        sa.Column("run_since", sa.String(64)),
        sa.Column("run_max", sa.String(64)),
        sa.Column("page_token", sa.String(200)),
        sa.Column("records_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_change_at", TS),
        sa.Column("last_run_at", TS),
        sa.Column("last_run_records", sa.Integer),
        sa.Column("last_run_seconds", sa.Float),
    )
    op.create_table(
        "sync_link",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("canonical_id", sa.String(32), nullable=False),
        sa.Column("source_version", sa.String(64)),
        sa.Column("source_hash", sa.String(40)),
        sa.Column("written_version", sa.String(64)),
        sa.Column("written_hash", sa.String(40)),
        sa.Column("synced_version", sa.Integer),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("system", "entity", "external_id", name="uq_sync_link_external"),
    )
    op.create_index("ix_sync_link_canonical", "sync_link", ["canonical_id", "system"])
    op.create_table(
        "sync_record",
        sa.Column("canonical_id", sa.String(32), primary_key=True),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("data_hash", sa.String(40), nullable=False),
        sa.Column("mapping_version", sa.String(120)),
        sa.Column("source_system", sa.String(80), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_sync_record_entity", "sync_record", ["entity"])
    op.create_table(
        "sync_record_version",
        sa.Column("canonical_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("source_system", sa.String(80), nullable=False),
        sa.Column("mapping_version", sa.String(120)),
        sa.Column("changed_at", TS, nullable=False),
    )
    op.create_table(
        "sync_conflict",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("canonical_id", sa.String(32), nullable=False),
        sa.Column("field", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_value", sa.Text),
        sa.Column("current_source", sa.String(80)),
        sa.Column("current_at", TS),
        sa.Column("incoming_value", sa.Text),
        sa.Column("incoming_system", sa.String(80), nullable=False),
        sa.Column("incoming_version", sa.String(64)),
        sa.Column("incoming_at", TS, nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("resolved_by", sa.String(120)),
        sa.Column("resolved_at", TS),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_sync_conflict_status", "sync_conflict", ["status", "canonical_id"])
    op.create_table(
        "sync_delivery",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("connection", sa.String(80), nullable=False),
        sa.Column("stream", sa.String(120), nullable=False),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("canonical_id", sa.String(32), nullable=False),
        sa.Column("canonical_version", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("source_event", sa.String(400), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_sync_delivery_due", "sync_delivery", ["connection", "status", "next_attempt_at"]
    )
    op.create_table(
        "sync_dlq",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("connection", sa.String(80), nullable=False),
        sa.Column("stream", sa.String(120)),
        sa.Column("entity", sa.String(60)),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("canonical_id", sa.String(32)),
        sa.Column("delivery_id", sa.BigInteger),
        sa.Column("idempotency_key", sa.String(64)),
        sa.Column("payload", sa.Text),
        sa.Column("response", sa.Text),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("error_class", sa.String(60), nullable=False),
        sa.Column("mapping_version", sa.String(120)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_sync_dlq_status", "sync_dlq", ["connection", "status"])
    op.create_table(
        "sync_webhook_event",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("connection", sa.String(80), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("stream", sa.String(120), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("processed_at", TS),
        sa.UniqueConstraint("connection", "event_id", name="uq_sync_webhook_event"),
    )
    op.create_index("ix_sync_webhook_status", "sync_webhook_event", ["status", "id"])
    op.create_table(
        "sync_rate_bucket",
        sa.Column("connection", sa.String(80), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "sync_rate_bucket",
        "sync_webhook_event",
        "sync_dlq",
        "sync_delivery",
        "sync_conflict",
        "sync_record_version",
        "sync_record",
        "sync_link",
        "sync_cursor",
        "sync_ownership",
        "sync_connection",
    ):
        op.drop_table(table)
