"""sync: the last poll of each connection (start, end, outcome, error, consecutive failures),
which the polling schedule reads to know when a connection is due

Revision ID: sync_0004
Revises: sync_0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sync_0004"
down_revision = "sync_0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_poll_state",
        sa.Column("connection", sa.String(80), primary_key=True),
        sa.Column("workflow_id", sa.String(200)),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("outcome", sa.String(20)),
        sa.Column("error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("sync_poll_state")
