"""Run records (every flow run, for KPIs and ROI) and pending human decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped, mapped_column

from spojka.core.db import Base, utcnow


class Outcome(StrEnum):
    running = "running"
    waiting = "waiting"
    automated = "automated"
    approved = "approved"
    rejected = "rejected"
    failed = "failed"
    dead_lettered = "dead_lettered"


FINAL_OUTCOMES = frozenset(
    {Outcome.automated, Outcome.approved, Outcome.rejected, Outcome.failed, Outcome.dead_lettered}
)


class FlowRun(Base):
    __tablename__ = "flow_run"

    workflow_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    flow: Mapped[str] = mapped_column(sa.String(120), index=True)
    subject: Mapped[str | None] = mapped_column(sa.String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[str] = mapped_column(sa.String(20), default=Outcome.running.value, index=True)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    human_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    model_cost: Mapped[float] = mapped_column(sa.Float, default=0.0)
    trace_id: Mapped[str | None] = mapped_column(sa.String(32))
    error: Mapped[str | None] = mapped_column(sa.Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class Decision(Base):
    """A flow waiting for a person: approve or reject, by someone with the required role."""

    __tablename__ = "decision_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    topic: Mapped[str] = mapped_column(sa.String(120))
    subject: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.Text)
    required_role: Mapped[str] = mapped_column(sa.String(20), default="approver")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision: Mapped[str | None] = mapped_column(sa.String(20))
    decided_by: Mapped[str | None] = mapped_column(sa.String(120))
    reason: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.UniqueConstraint("workflow_id", "topic", name="uq_decision_wf_topic"),)


class FlowRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    workflow_id: str
    flow: str
    subject: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    latency_ms: float | None
    human_seconds: float
    model_cost: float
    trace_id: str | None
    error: str | None


class DecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    workflow_id: str
    topic: str
    subject: str
    summary: str
    required_role: str
    requested_at: datetime
    decided_at: datetime | None
    decision: str | None
    decided_by: str | None
    reason: str | None


class DecisionIn(BaseModel):
    decision: str
    reason: str | None = None
    minutes_spent: float | None = None
