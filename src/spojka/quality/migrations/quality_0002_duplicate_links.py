"""quality: within-system duplicate links and flags (propagation never deletes)

Revision ID: quality_0002
Revises: quality_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "quality_0002"
down_revision = "quality_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_duplicate_link",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(20), nullable=False),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("cluster_id", sa.String(36), nullable=False, index=True),
        sa.Column("survivor_external_id", sa.String(200), nullable=False),
        sa.Column("sync_canonical_id", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("entity", "system", "external_id"),
    )


def downgrade() -> None:
    op.drop_table("quality_duplicate_link")
