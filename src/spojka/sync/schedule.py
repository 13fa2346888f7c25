"""Polling schedule: a connection with ``poll_interval_s`` is polled by the running runtime
when it is due, nobody has to trigger it.

A short DBOS schedule (``TICK_CRON``, every few seconds; see :mod:`spojka.sync.flows`) asks
``enqueue_due`` which connections are due and queues ``sync.run`` for each. Two ids keep it
to one poll at a time:

- the workflow id is the connection and its *slot* (the interval-long window of wall-clock
  time the tick falls in): several workers, two ticks or a restart queue a slot once;
- the deduplication id is the connection alone: while its poll is still queued or running, a
  later slot is not queued at all (a slow poll is never started twice).

Due: never polled, or the last poll is older than the interval. The last poll is the newer of
the last ``sync.run`` start (``sync_poll_state``, written by the flow, with its outcome) and
the last stream poll that finished (``sync_cursor.last_run_at``, also written by
``spojka sync run``). After consecutive failed polls the wait doubles each time, up to
``BACKOFF_CAP_S`` (never shorter than the interval); a successful poll resets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from dbos import error as dbos_error
from sqlalchemy.engine import Engine

from spojka.core.db import utcnow
from spojka.core.errors import ConfigError
from spojka.core.logging import get_logger
from spojka.core.settings import Settings
from spojka.runtime.models import Outcome
from spojka.sync.engine import SyncSettings
from spojka.sync.store import CONNECTION, CURSOR, POLL_STATE, insert_ignore

log = get_logger("spojka.sync.schedule")

#: how often the runtime looks for due connections (cron with seconds first)
TICK_CRON = "*/5 * * * * *"
TICK_S = 5.0
#: the longest wait after consecutive failures (unless the interval itself is longer)
BACKOFF_CAP_S = 900.0
#: the queue scheduled polls wait on (apart from the flows people wait for)
POLL_QUEUE = "sync.poll"
TICK_FLOW = "sync.poll.tick"
#: finished ticks are kept this long (one every few seconds would pile up in the runtime)
TICK_RETENTION = timedelta(days=1)
#: scheduled polls that changed nothing are kept this long (see ``prune_idle_polls``)
IDLE_POLL_RETENTION = timedelta(days=1)


# -- the rule (pure) --------------------------------------------------------------------------


def poll_delay(interval_s: float, failures: int) -> float:
    """Seconds from the last poll to the next: the interval; after the second consecutive
    failure it doubles each time, up to ``BACKOFF_CAP_S`` (never below the interval)."""
    if failures <= 1:
        return interval_s
    return max(interval_s, min(interval_s * 2 ** (failures - 1), BACKOFF_CAP_S))


def next_poll_at(
    *, interval_s: float, last_poll_at: datetime | None, failures: int = 0
) -> datetime | None:
    """When the connection is due; ``None``: never polled, due now."""
    if last_poll_at is None:
        return None
    return _aware(last_poll_at) + timedelta(seconds=poll_delay(interval_s, failures))


def is_due(
    *, now: datetime, interval_s: float, last_poll_at: datetime | None, failures: int = 0
) -> bool:
    """Never polled, or the last poll is older than the interval (stretched after failures)."""
    due = next_poll_at(interval_s=interval_s, last_poll_at=last_poll_at, failures=failures)
    return due is None or _aware(now) >= due


def slot_start(now: datetime, interval_s: float) -> datetime:
    """Start of the interval-long window of wall-clock time that ``now`` falls in."""
    ms = int(interval_s * 1000)
    epoch_ms = int(_aware(now).timestamp() * 1000)
    return datetime.fromtimestamp((epoch_ms - epoch_ms % ms) / 1000, UTC)


def poll_workflow_id(connection: str, slot: datetime) -> str:
    """The workflow id of a connection's scheduled poll in one slot (same in every process)."""
    at = _aware(slot).astimezone(UTC)
    return f"sync.poll:{connection}:{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def _aware(at: datetime) -> datetime:
    """In UTC (SQLite gives naive UTC times back, PostgreSQL the session's time zone)."""
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def _latest(*values: datetime | None) -> datetime | None:
    known = [_aware(v) for v in values if v is not None]
    return max(known) if known else None


# -- the state (database) -------------------------------------------------------------------


@dataclass(frozen=True)
class PollPlan:
    """A connection's polling: its interval, its last poll and when the next one is due."""

    connection: str
    interval_s: float | None  # None: on demand and webhooks only
    last_poll_at: datetime | None
    outcome: str | None  # of the last poll the runtime ran (running, automated, failed…)
    error: str | None  # of the last finished poll; None once one succeeded
    failures: int
    workflow_id: str | None

    @property
    def next_poll_at(self) -> datetime | None:
        """When it is due (``None`` without an interval, or never polled: due now)."""
        if self.interval_s is None:
            return None
        return next_poll_at(
            interval_s=self.interval_s, last_poll_at=self.last_poll_at, failures=self.failures
        )

    def due(self, now: datetime) -> bool:
        return self.interval_s is not None and is_due(
            now=now,
            interval_s=self.interval_s,
            last_poll_at=self.last_poll_at,
            failures=self.failures,
        )

    def as_dict(self) -> dict[str, Any]:
        due = self.next_poll_at
        if self.interval_s is not None and due is None:
            due = utcnow()
        return {
            "interval_s": self.interval_s,
            "last_poll_at": self.last_poll_at,
            "last_outcome": self.outcome,
            "last_error": self.error,
            "failures": self.failures,
            "next_poll_at": due,
            "workflow_id": self.workflow_id,
        }


def _interval(name: str, settings: dict[str, Any] | None) -> float | None:
    try:
        return SyncSettings.from_dict(settings).poll_interval_s
    except (ConfigError, TypeError) as exc:
        log.warning("connection settings unreadable; not polled", connection=name, error=str(exc))
        return None


def plans(*, db: Engine, names: Sequence[str] | None = None) -> list[PollPlan]:
    """The polling plan of every connection (or of ``names``), by name."""
    with db.connect() as conn:
        stmt = sa.select(CONNECTION.c.name, CONNECTION.c.settings).order_by(CONNECTION.c.name)
        cursors = sa.select(CURSOR.c.connection, sa.func.max(CURSOR.c.last_run_at)).group_by(
            CURSOR.c.connection
        )
        states = sa.select(POLL_STATE)
        if names is not None:
            stmt = stmt.where(CONNECTION.c.name.in_(names))
            cursors = cursors.where(CURSOR.c.connection.in_(names))
            states = states.where(POLL_STATE.c.connection.in_(names))
        rows = conn.execute(stmt).all()
        finished: dict[str, datetime | None] = {
            name: at for name, at in conn.execute(cursors).all()
        }
        state = {r.connection: r for r in conn.execute(states).all()}
    out = []
    for row in rows:
        st = state.get(row.name)
        polled = finished.get(row.name)
        failures = st.failures if st is not None else 0
        ended = _latest(st.ended_at, st.started_at) if st is not None else None
        if polled is not None and ended is not None and _aware(polled) > ended:
            failures = 0  # a poll outside the runtime (`spojka sync run`) finished since
        out.append(
            PollPlan(
                connection=row.name,
                interval_s=_interval(row.name, row.settings),
                last_poll_at=_latest(polled, st.started_at if st is not None else None),
                outcome=st.outcome if st is not None else None,
                error=st.error if st is not None else None,
                failures=failures,
                workflow_id=st.workflow_id if st is not None else None,
            )
        )
    return out


def due(*, db: Engine, now: datetime) -> list[PollPlan]:
    """Connections with an interval whose next poll is due at ``now``."""
    return [p for p in plans(db=db) if p.due(now)]


def enqueue_due(*, db: Engine, settings: Settings, now: datetime) -> list[str]:
    """Queue ``sync.run`` for every due connection, once per (connection, slot); a connection
    whose previous poll is still queued or running is left for a later tick."""
    from spojka.runtime import engine as runtime

    queued = []
    for plan in due(db=db, now=now):
        assert plan.interval_s is not None
        workflow_id = poll_workflow_id(plan.connection, slot_start(now, plan.interval_s))
        try:
            runtime.enqueue(
                settings,
                "sync.run",
                connection=plan.connection,
                workflow_id=workflow_id,
                queue=POLL_QUEUE,
                deduplication_id=f"sync.poll:{plan.connection}",
            )
        except dbos_error.DBOSQueueDeduplicatedError:
            continue  # its previous poll is still queued or running
        except Exception as exc:  # one connection never holds up the others
            log.warning("poll not queued", connection=plan.connection, error=str(exc))
            continue
        queued.append(workflow_id)
    return queued


def prune_ticks(*, settings: Settings, before: datetime) -> int:
    """Forget finished ticks started before ``before`` (each is a workflow of the runtime's
    own tables); the polls they queued are kept with their run records."""
    from spojka.runtime import engine as runtime

    client = runtime.client(settings)
    old = client.list_workflows(
        name=TICK_FLOW,
        status=["SUCCESS", "ERROR", "CANCELLED"],
        end_time=_aware(before).isoformat(),
        load_input=False,
        load_output=False,
        limit=10_000,
    )
    if old:
        client.delete_workflows([w.workflow_id for w in old])
    return len(old)


def is_idle(detail: dict[str, Any] | None) -> bool:
    """A poll that changed nothing: no record created or changed, no conflict, no dead
    letter, nothing delivered or retried (the figures ``sync.flows.summarize`` records)."""
    if not detail:
        return False
    for stream in (detail.get("streams") or {}).values():
        if any(stream.get(k) for k in ("created", "changed", "conflicts", "dead_lettered")):
            return False
    for delivery in (detail.get("deliveries") or {}).values():
        if any(delivery.get(k) for k in ("delivered", "retried", "dead_lettered")):
            return False
    return True


def prune_idle_polls(*, db: Engine, settings: Settings, before: datetime) -> int:
    """Forget scheduled polls that ended before ``before`` and changed nothing: their run
    record and their workflow in the runtime's tables. A poll every minute would otherwise
    add two rows a minute per connection forever; polls that changed, failed or dead-lettered
    something stay, and the connection's last poll is kept in ``sync_poll_state``."""
    from spojka.runtime import engine as runtime
    from spojka.runtime.models import FlowRun

    with db.connect() as conn:
        rows = conn.execute(
            sa.select(FlowRun.workflow_id, FlowRun.detail).where(
                FlowRun.flow == "sync.run",
                FlowRun.workflow_id.like("sync.poll:%"),
                FlowRun.outcome == Outcome.automated.value,
                FlowRun.ended_at < _aware(before),
            )
        ).all()
    idle = [r.workflow_id for r in rows if is_idle(r.detail)]
    for part in range(0, len(idle), 500):
        ids = idle[part : part + 500]
        runtime.client(settings).delete_workflows(ids)
        with db.begin() as conn:
            conn.execute(sa.delete(FlowRun).where(FlowRun.workflow_id.in_(ids)))
    return len(idle)


def record_start(*, db: Engine, connection: str, workflow_id: str) -> None:
    """A ``sync.run`` of the connection started (no row for a connection that is not there)."""
    with db.begin() as conn:
        exists = conn.execute(
            sa.select(CONNECTION.c.name).where(CONNECTION.c.name == connection)
        ).first()
        if exists is None:
            return
        conn.execute(insert_ignore(conn, POLL_STATE).values(connection=connection, failures=0))
        conn.execute(
            POLL_STATE.update()
            .where(POLL_STATE.c.connection == connection)
            .values(
                workflow_id=workflow_id,
                started_at=utcnow(),
                ended_at=None,
                outcome=Outcome.running.value,  # ``error`` stays: the last finished poll's
            )
        )


def record_end(
    *, db: Engine, connection: str, workflow_id: str, outcome: str, error: str | None = None
) -> None:
    """A ``sync.run`` ended; a failure counts one more consecutive failure, anything else
    resets the count."""
    failed = outcome == Outcome.failed.value
    with db.begin() as conn:
        conn.execute(
            POLL_STATE.update()
            .where(POLL_STATE.c.connection == connection, POLL_STATE.c.workflow_id == workflow_id)
            .values(
                ended_at=utcnow(),
                outcome=outcome,
                error=error[:4000] if error else None,
                failures=POLL_STATE.c.failures + 1 if failed else 0,
            )
        )
