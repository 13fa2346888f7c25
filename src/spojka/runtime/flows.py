"""How a Spojka flow is written: a durable workflow with a run record and human decisions.

@flow("demo.onboarding")
def onboarding(customer: dict) -> FlowResult:
    checked = validate(customer)            # a @step
    answer = await_decision(subject=..., summary=...)
    ...
    return FlowResult(Outcome.approved, detail={...})
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from dbos import DBOS

from spojka.bootstrap import current
from spojka.core import tracing
from spojka.core.db import transaction
from spojka.core.errors import NotFoundError, ValidationError
from spojka.core.logging import get_logger
from spojka.runtime import runs
from spojka.runtime.models import Outcome

P = ParamSpec("P")
R = TypeVar("R")
log = get_logger("spojka.runtime")

step = DBOS.step
# Flow name → the undecorated function, to check arguments before a run is queued.
FLOWS: dict[str, Callable[..., Any]] = {}


@dataclass
class FlowResult:
    outcome: Outcome
    detail: dict[str, Any] = field(default_factory=dict)
    model_cost: float = 0.0


@DBOS.step(name="spojka.run.start")
def _start(workflow_id: str, flow: str, subject: str | None, trace_id: str | None) -> None:
    with transaction(current().sessions) as session:
        runs.start_run(
            session, workflow_id=workflow_id, flow=flow, subject=subject, trace_id=trace_id
        )


@DBOS.step(name="spojka.run.finish")
def _finish(
    workflow_id: str,
    outcome: str,
    error: str | None,
    model_cost: float,
    detail: dict[str, Any] | None,
) -> None:
    with transaction(current().sessions) as session:
        runs.finish_run(
            session,
            workflow_id=workflow_id,
            outcome=Outcome(outcome),
            error=error,
            model_cost=model_cost,
            detail=detail,
        )


def flow(name: str, *, subject_arg: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Make ``fn`` a durable workflow named ``name`` that keeps a run record."""

    def decorate(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def workflow(*args: Any, _trace_id: str | None = None, **kwargs: Any) -> Any:
            workflow_id = DBOS.workflow_id or ""
            subject = str(kwargs.get(subject_arg)) if subject_arg in kwargs else None
            with tracing.trace_context(_trace_id):
                _start(workflow_id, name, subject, tracing.current_trace_id())
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    log.warning("flow failed", flow=name, workflow_id=workflow_id, error=str(exc))
                    _finish(workflow_id, Outcome.failed.value, str(exc), 0.0, None)
                    raise
                if isinstance(result, FlowResult):
                    _finish(
                        workflow_id, result.outcome.value, None, result.model_cost, result.detail
                    )
                    return {"outcome": result.outcome.value, **result.detail}
                _finish(workflow_id, Outcome.automated.value, None, 0.0, None)
                return result

        FLOWS[name] = fn
        return DBOS.workflow(name=name)(workflow)

    return decorate


def check_arguments(name: str, arguments: dict[str, Any]) -> None:
    """Raise a clear error when a flow is unknown or the arguments do not fit it."""
    from spojka.runtime import engine

    engine.import_flows()
    if name not in FLOWS:
        raise NotFoundError(f"unknown flow {name!r}; known: {', '.join(sorted(FLOWS))}")
    try:
        inspect.signature(FLOWS[name]).bind(**arguments)
    except TypeError as exc:
        raise ValidationError(f"arguments for flow {name!r} do not fit: {exc}") from None


@DBOS.step(name="spojka.decision.request")
def _request(workflow_id: str, topic: str, subject: str, summary: str, role: str) -> int:
    with transaction(current().sessions) as session:
        request = runs.request_decision(
            session,
            workflow_id=workflow_id,
            topic=topic,
            subject=subject,
            summary=summary,
            required_role=role,
        )
        runs.set_outcome(session, workflow_id=workflow_id, outcome=Outcome.waiting)
        return request.id


@DBOS.step(name="spojka.decision.received")
def _received(workflow_id: str, human_seconds: float) -> None:
    with transaction(current().sessions) as session:
        runs.set_outcome(session, workflow_id=workflow_id, outcome=Outcome.running)
        runs.add_human_time(session, workflow_id=workflow_id, seconds=human_seconds)


def await_decision(
    *,
    subject: str,
    summary: str,
    topic: str = "decision",
    required_role: str = "approver",
    timeout_seconds: float = 7 * 24 * 3600,
) -> dict[str, Any] | None:
    """Wait durably (survives restarts) for a person's decision; None after the timeout."""
    workflow_id = DBOS.workflow_id or ""
    _request(workflow_id, topic, subject, summary, required_role)
    message = DBOS.recv(topic, timeout_seconds=timeout_seconds)
    if message is None:
        return None
    _received(workflow_id, float(message.get("human_seconds") or 0.0))
    return dict(message)


def signal_decision(
    *,
    decision_id: int,
    decision: str,
    actor: str,
    role: str,
    reason: str | None = None,
    minutes_spent: float | None = None,
) -> dict[str, Any]:
    """Record a person's decision and wake the waiting workflow (idempotent)."""
    from spojka.runtime import engine

    app = current()
    with transaction(app.sessions) as session:
        request = runs.record_decision(
            session,
            decision_id=decision_id,
            decision=decision,
            actor=actor,
            role=role,
            reason=reason,
        )
        workflow_id, topic = request.workflow_id, request.topic
    message = {
        "decision": decision,
        "actor": actor,
        "reason": reason,
        "human_seconds": (minutes_spent or 0.0) * 60,
    }
    engine.send(app.settings, workflow_id, message, topic=topic, key=f"decision-{decision_id}")
    return {"decision_id": decision_id, "workflow_id": workflow_id, **message}
