"""sync: webhook inbox rows wait for their next attempt (id-only events whose record fetch
failed transiently)

Revision ID: sync_0002
Revises: sync_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sync_0002"
down_revision = "sync_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_webhook_event") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("sync_webhook_event") as batch:
        batch.drop_column("next_attempt_at")
