"""API of the runtime: run records, KPIs basis, decisions, starting flows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, status
from sqlalchemy.orm import Session

from spojka.api.auth import APPROVE, OPERATE, READ, Principal, get_app, get_session, require
from spojka.bootstrap import Spojka
from spojka.runtime import engine, runs
from spojka.runtime.flows import check_arguments, signal_decision
from spojka.runtime.models import DecisionIn, DecisionRead, FlowRunRead

router = APIRouter(tags=["runtime"])


@router.get("/runs", response_model=list[FlowRunRead])
def list_runs(
    flow: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> list[Any]:
    return runs.list_runs(session, flow=flow, outcome=outcome, since=since, limit=min(limit, 1000))


@router.get("/runs/summary")
def runs_summary(
    since: datetime | None = None,
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    return [
        {**vars(s), "automation_rate": s.automation_rate}
        for s in runs.summarize(session, since=since)
    ]


@router.post("/flows/{flow}/runs", status_code=status.HTTP_202_ACCEPTED)
def start_flow(
    flow: str,
    payload: dict[str, Any] = Body(default_factory=dict),
    workflow_id: str | None = None,
    principal: Principal = require(OPERATE),
    app: Spojka = Depends(get_app),
) -> dict[str, str]:
    """Queue a run of a registered flow with keyword arguments; same workflow_id runs once."""
    check_arguments(flow, payload)
    wid = engine.enqueue(app.settings, flow, workflow_id=workflow_id, **payload)
    return {"workflow_id": wid}


@router.get("/decisions", response_model=list[DecisionRead])
def list_decisions(
    principal: Principal = require(READ), session: Session = Depends(get_session)
) -> list[Any]:
    return runs.pending_decisions(session)


@router.post("/decisions/{decision_id}")
def decide(
    decision_id: int,
    decision_in: DecisionIn,
    principal: Principal = require(APPROVE),
) -> dict[str, Any]:
    return signal_decision(
        decision_id=decision_id,
        decision=decision_in.decision,
        actor=principal.name,
        role=principal.role.value,
        reason=decision_in.reason,
        minutes_spent=decision_in.minutes_spent,
    )
