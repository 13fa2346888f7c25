"""Service functions over run records and decision requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core.db import utcnow
from spojka.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from spojka.governance import audit
from spojka.runtime.models import FINAL_OUTCOMES, Decision, FlowRun, Outcome


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def start_run(
    session: Session, *, workflow_id: str, flow: str, subject: str | None, trace_id: str | None
) -> FlowRun:
    """Insert the run record once; a recovered workflow finds the one it wrote before."""
    run = session.get(FlowRun, workflow_id)
    if run is None:
        run = FlowRun(
            workflow_id=workflow_id,
            flow=flow,
            subject=subject,
            trace_id=trace_id,
            outcome=Outcome.running.value,
            started_at=utcnow(),
        )
        session.add(run)
        session.flush()
    return run


def finish_run(
    session: Session,
    *,
    workflow_id: str,
    outcome: Outcome,
    error: str | None = None,
    model_cost: float = 0.0,
    detail: dict[str, Any] | None = None,
) -> FlowRun:
    run = session.get(FlowRun, workflow_id)
    if run is None:
        raise NotFoundError(f"run {workflow_id} not found")
    if run.outcome in FINAL_OUTCOMES:
        return run  # a replayed finish step changes nothing
    ended = utcnow()
    run.ended_at = ended
    run.outcome = outcome.value
    run.latency_ms = (ended - _aware(run.started_at)).total_seconds() * 1000
    run.error = error
    run.model_cost = (run.model_cost or 0.0) + model_cost
    if detail is not None:
        run.detail = detail
    return run


def set_outcome(session: Session, *, workflow_id: str, outcome: Outcome) -> None:
    run = session.get(FlowRun, workflow_id)
    if run is not None and run.outcome not in FINAL_OUTCOMES:
        run.outcome = outcome.value


def add_human_time(session: Session, *, workflow_id: str, seconds: float) -> None:
    run = session.get(FlowRun, workflow_id)
    if run is not None:
        run.human_seconds = (run.human_seconds or 0.0) + seconds


def list_runs(
    session: Session,
    *,
    flow: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[FlowRun]:
    query = sa.select(FlowRun).order_by(FlowRun.started_at.desc()).limit(limit)
    if flow:
        query = query.where(FlowRun.flow == flow)
    if outcome:
        query = query.where(FlowRun.outcome == outcome)
    if since:
        query = query.where(FlowRun.started_at >= since)
    return list(session.execute(query).scalars())


@dataclass(frozen=True)
class RunSummary:
    flow: str
    runs: int
    finished: int
    automated: int
    approved: int
    rejected: int
    failed: int
    dead_lettered: int
    avg_latency_ms: float | None
    human_seconds: float
    model_cost: float

    @property
    def automation_rate(self) -> float | None:
        return self.automated / self.finished if self.finished else None


def summarize(session: Session, *, since: datetime | None = None) -> list[RunSummary]:
    """Counts per flow and outcome, the basis of KPIs and ROI."""
    query = sa.select(
        FlowRun.flow,
        FlowRun.outcome,
        sa.func.count(),
        sa.func.avg(FlowRun.latency_ms),
        sa.func.sum(FlowRun.human_seconds),
        sa.func.sum(FlowRun.model_cost),
    ).group_by(FlowRun.flow, FlowRun.outcome)
    if since:
        query = query.where(FlowRun.started_at >= since)
    per_flow: dict[str, dict[str, Any]] = {}
    for flow, outcome, count, avg_latency, human, cost in session.execute(query):
        row = per_flow.setdefault(flow, {"counts": {}, "lat": [], "human": 0.0, "cost": 0.0})
        row["counts"][outcome] = count
        if avg_latency is not None and outcome in FINAL_OUTCOMES:
            row["lat"].append((avg_latency, count))
        row["human"] += human or 0.0
        row["cost"] += cost or 0.0
    result = []
    for flow, row in sorted(per_flow.items()):
        counts = row["counts"]
        finished = sum(counts.get(o.value, 0) for o in FINAL_OUTCOMES)
        weight = sum(c for _, c in row["lat"])
        avg = sum(v * c for v, c in row["lat"]) / weight if weight else None
        result.append(
            RunSummary(
                flow=flow,
                runs=sum(counts.values()),
                finished=finished,
                automated=counts.get("automated", 0),
                approved=counts.get("approved", 0),
                rejected=counts.get("rejected", 0),
                failed=counts.get("failed", 0),
                dead_lettered=counts.get("dead_lettered", 0),
                avg_latency_ms=avg,
                human_seconds=row["human"],
                model_cost=row["cost"],
            )
        )
    return result


def request_decision(
    session: Session,
    *,
    workflow_id: str,
    topic: str,
    subject: str,
    summary: str,
    required_role: str,
) -> Decision:
    existing = session.scalar(
        sa.select(Decision).where(Decision.workflow_id == workflow_id, Decision.topic == topic)
    )
    if existing is not None:
        return existing
    decision = Decision(
        workflow_id=workflow_id,
        topic=topic,
        subject=subject,
        summary=summary,
        required_role=required_role,
    )
    session.add(decision)
    session.flush()
    return decision


def pending_decisions(session: Session) -> list[Decision]:
    query = sa.select(Decision).where(Decision.decided_at.is_(None)).order_by(Decision.id)
    return list(session.execute(query).scalars())


def get_decision(session: Session, decision_id: int) -> Decision:
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise NotFoundError(f"decision request {decision_id} not found")
    return decision


def record_decision(
    session: Session,
    *,
    decision_id: int,
    decision: str,
    actor: str,
    role: str,
    reason: str | None = None,
) -> Decision:
    """Store a person's decision (audited). The caller then signals the waiting workflow."""
    if decision not in ("approve", "reject"):
        raise ValidationError("decision must be 'approve' or 'reject'")
    request = get_decision(session, decision_id)
    if role not in ("admin", request.required_role):
        raise ForbiddenError(f"this decision needs the role {request.required_role!r}")
    if request.decided_at is not None:
        if request.decision == decision:
            return request  # the same answer twice is not an error
        raise ConflictError(f"decision request {decision_id} was already {request.decision}d")
    if decision == "reject" and not (reason and reason.strip()):
        raise ValidationError("a rejection needs a reason")
    request.decision = decision
    request.decided_by = actor
    request.decided_at = utcnow()
    request.reason = reason
    audit.record(
        session,
        actor=actor,
        role=role,
        action=f"decision.{decision}",
        object_type="decision_request",
        object_id=str(request.id),
        before={"decision": None},
        after={"decision": decision, "subject": request.subject},
        reason=reason,
    )
    return request
