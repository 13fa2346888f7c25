"""sync: drop the index on sync_record.entity — no query reads records by entity alone
(lookups go by canonical id through the link table), and every insert paid for it

Revision ID: sync_0003
Revises: sync_0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "sync_0003"
down_revision = "sync_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sync_record_entity", table_name="sync_record")


def downgrade() -> None:
    op.create_index("ix_sync_record_entity", "sync_record", ["entity"])
