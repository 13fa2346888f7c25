"""Sync runs as durable flows of the runtime (DBOS): ``sync.run`` polls one connection and
delivers its changes, with a run record (outcome, latency) like every other flow.

The engine is crash-safe on its own (checkpoints and outbox rows commit with each page), so
the step may safely run again after a crash: DBOS re-executes it and the engine resumes from
its last checkpoint. Register by adding ``"spojka.sync.flows"`` to
``spojka.runtime.engine.FLOW_MODULES``; enqueue with
``engine.enqueue(settings, "sync.run", connection="crm")`` or schedule it.
"""

from __future__ import annotations

from typing import Any

from spojka.bootstrap import current
from spojka.runtime.flows import FlowResult, flow, step
from spojka.runtime.models import Outcome
from spojka.sync.engine import SyncEngine


def summarize(result: dict[str, Any]) -> tuple[Outcome, dict[str, Any]]:
    """Outcome and figures of one engine run (pure): dead letters make it dead_lettered."""
    detail: dict[str, Any] = {"streams": {}, "deliveries": {}}
    dead = 0
    for report in result["streams"]:
        stats = report.stats
        dead += stats.dead_lettered
        detail["streams"][report.stream] = {
            "records": report.records,
            "created": stats.created,
            "changed": stats.applied - stats.created,
            "conflicts": stats.conflicts + stats.rejected,
            "dead_lettered": stats.dead_lettered,
            "cursor": report.cursor,
        }
    for delivery in result["deliveries"]:
        dead += delivery.dead_lettered
        detail["deliveries"][delivery.connection] = {
            "delivered": delivery.delivered,
            "retried": delivery.retried,
            "dead_lettered": delivery.dead_lettered,
        }
    return (Outcome.dead_lettered if dead else Outcome.automated), detail


@step(name="sync.run.poll_and_deliver")
def _poll_and_deliver(connection: str) -> dict[str, Any]:
    engine = SyncEngine(current().engine)
    try:
        outcome, detail = summarize(engine.run(connection))
    finally:
        engine.close()
    return {"outcome": outcome.value, "detail": detail}


@flow("sync.run", subject_arg="connection")
def sync_run(connection: str) -> FlowResult:
    """Poll one connection from its checkpoint and deliver the changes to subscribers."""
    answer = _poll_and_deliver(connection)
    return FlowResult(Outcome(answer["outcome"]), detail=answer["detail"])
