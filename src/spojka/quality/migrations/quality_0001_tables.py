"""quality: records, clusters with golden records, review queue, merge events, score trend

Revision ID: quality_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "quality_0001"
down_revision = None
branch_labels = ("quality",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "quality_cluster",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("entity", sa.String(20), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("merged_into", sa.String(36)),
        sa.Column("golden", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "quality_record",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(20), nullable=False, index=True),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("normalized", sa.JSON, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("source_updated_at", TS),
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("quality_cluster.id"), index=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("entity", "system", "external_id"),
    )
    op.create_table(
        "quality_review",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(20), nullable=False, index=True),
        sa.Column("left_record_id", sa.Integer, sa.ForeignKey("quality_record.id"), nullable=False),
        sa.Column(
            "right_record_id", sa.Integer, sa.ForeignKey("quality_record.id"), nullable=False
        ),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("explanation", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("decided_by", sa.String(120)),
        sa.Column("decided_at", TS),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "quality_merge_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(20), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("undone_by", sa.Integer),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "quality_score_snapshot",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(20), nullable=False),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("average", sa.Float, nullable=False),
        sa.Column("invalid", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in (
        "quality_score_snapshot",
        "quality_merge_event",
        "quality_review",
        "quality_record",
        "quality_cluster",
    ):
        op.drop_table(table)
