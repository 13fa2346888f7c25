"""Sync runs as durable flows of the runtime (DBOS): ``sync.run`` polls one connection and
delivers its changes, with a run record (outcome, latency) like every other flow.

The engine is crash-safe on its own (checkpoints and outbox rows commit with each page), so
the step may safely run again after a crash: DBOS re-executes it and the engine resumes from
its last checkpoint. Register by adding ``"spojka.sync.flows"`` to
``spojka.runtime.engine.FLOW_MODULES``; enqueue with
``engine.enqueue(settings, "sync.run", connection="crm")``.

Connections with a polling interval are polled without anyone asking: the schedule
``spojka.sync.poll`` runs ``sync.poll.tick`` every few seconds in the running runtime, which
queues ``sync.run`` for each connection that is due (see :mod:`spojka.sync.schedule`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dbos import DBOS

from spojka.bootstrap import current
from spojka.runtime.engine import declare_queue, declare_schedule
from spojka.runtime.flows import FlowResult, flow, step
from spojka.runtime.models import Outcome
from spojka.sync import schedule
from spojka.sync.engine import SyncEngine

# Scheduled polls wait on their own queue, so many connections never hold up other flows.
declare_queue(schedule.POLL_QUEUE, worker_concurrency=2)


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


@step(name="sync.run.started")
def _started(connection: str, workflow_id: str) -> None:
    schedule.record_start(db=current().engine, connection=connection, workflow_id=workflow_id)


@step(name="sync.run.ended")
def _ended(connection: str, workflow_id: str, outcome: str, error: str | None) -> None:
    schedule.record_end(
        db=current().engine,
        connection=connection,
        workflow_id=workflow_id,
        outcome=outcome,
        error=error,
    )


@flow("sync.run", subject_arg="connection")
def sync_run(connection: str) -> FlowResult:
    """Poll one connection from its checkpoint and deliver the changes to subscribers."""
    workflow_id = DBOS.workflow_id or ""
    _started(connection, workflow_id)
    try:
        answer = _poll_and_deliver(connection)
    except Exception as exc:
        _ended(connection, workflow_id, Outcome.failed.value, str(exc))
        raise
    _ended(connection, workflow_id, answer["outcome"], None)
    return FlowResult(Outcome(answer["outcome"]), detail=answer["detail"])


@step(name="sync.poll.queue_due")
def _queue_due(at: str) -> list[str]:
    app = current()
    return schedule.enqueue_due(
        db=app.engine, settings=app.settings, now=datetime.fromisoformat(at)
    )


@step(name="sync.poll.prune_ticks")
def _prune_ticks(at: str) -> int:
    app, now = current(), datetime.fromisoformat(at)
    pruned = schedule.prune_ticks(settings=app.settings, before=now - schedule.TICK_RETENTION)
    return pruned + schedule.prune_idle_polls(
        db=app.engine, settings=app.settings, before=now - schedule.IDLE_POLL_RETENTION
    )


@DBOS.workflow(name=schedule.TICK_FLOW)
def poll_tick(scheduled_at: datetime, context: Any) -> None:
    """Queue ``sync.run`` for every connection whose polling interval has passed; the time
    is the schedule's own (the same in every worker that fires it). Once an hour, finished
    ticks and scheduled polls that changed nothing, older than a day, are forgotten."""
    _queue_due(scheduled_at.isoformat())
    if scheduled_at.minute == 0 and scheduled_at.second < schedule.TICK_S:
        _prune_ticks(scheduled_at.isoformat())


declare_schedule("spojka.sync.poll", poll_tick, schedule.TICK_CRON)
