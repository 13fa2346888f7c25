"""runtime: flow run records and decision requests

Revision ID: runtime_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "runtime_0001"
down_revision = None
branch_labels = ("runtime",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flow_run",
        sa.Column("workflow_id", sa.String(200), primary_key=True),
        sa.Column("flow", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200)),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("human_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("model_cost", sa.Float, nullable=False, server_default="0"),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_flow_run_flow", "flow_run", ["flow"])
    op.create_index("ix_flow_run_started_at", "flow_run", ["started_at"])
    op.create_index("ix_flow_run_outcome", "flow_run", ["outcome"])
    op.create_table(
        "decision_request",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("required_role", sa.String(20), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("decided_at", TS),
        sa.Column("decision", sa.String(20)),
        sa.Column("decided_by", sa.String(120)),
        sa.Column("reason", sa.Text),
        sa.UniqueConstraint("workflow_id", "topic", name="uq_decision_wf_topic"),
    )
    op.create_index("ix_decision_request_workflow_id", "decision_request", ["workflow_id"])


def downgrade() -> None:
    op.drop_table("decision_request")
    op.drop_table("flow_run")
