"""Webhook intake: verify, store durably, answer; process asynchronously from the inbox.

An event is committed to ``sync_webhook_event`` before the caller gets its 2xx, and the
``(connection, event_id)`` unique key drops redeliveries. A background worker (or
``spojka sync webhooks``) applies stored events through the same ingest path as polling,
so de-duplication by (id, version), ownership and conflicts apply to them equally.

Intake is built for bursts: the group-commit :class:`InboxWriter` stores the events of all
concurrent requests in one transaction before any of them is answered. Id-only events
(``{"event_id", "stream", "id"}``, as many systems send) get their record from the
connector's ``read_one`` while processing: a transient failure is retried with backoff,
a permanent one (or the last attempt) becomes a dead letter that ``dlq replay`` fetches
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from spojka.connectors.base import Record, WebhookEvent, WebhookReply
from spojka.core import tracing
from spojka.core.db import utcnow
from spojka.core.errors import NotFoundError, PermanentError, SpojkaError, TransientError
from spojka.core.logging import get_logger
from spojka.sync import metrics, rules
from spojka.sync.engine import ConnectionRuntime, SyncEngine, SyncSettings
from spojka.sync.store import CONNECTION, DLQ, WEBHOOK

log = get_logger("spojka.sync.webhooks")


@dataclass(frozen=True)
class Receipt:
    stored: int
    duplicates: int


class Handshake(Exception):  # a request to answer, not an error
    """A vendor's set-up request (Asana's X-Hook-Secret): answered, nothing stored."""

    def __init__(self, reply: WebhookReply) -> None:
        super().__init__("webhook handshake")
        self.reply = reply


def verify(
    *, engine: SyncEngine, connection: str, headers: Mapping[str, str], body: bytes
) -> list[dict[str, object]]:
    """Check a delivery and turn its events into inbox rows; NotFound/Auth/ValidationError,
    or :class:`Handshake` for a vendor's set-up request."""
    runtime = engine.runtime(connection)  # unknown connection → NotFoundError (404)
    try:
        handshake = runtime.connector.webhook_handshake(headers, body)
        if handshake is not None:
            raise Handshake(handshake)
        events = runtime.connector.verify_webhook(headers, body)
    except SpojkaError:
        metrics.WEBHOOKS.labels(connection, "rejected").inc()
        raise
    now = utcnow()
    trace_id = tracing.current_trace_id()
    return [
        dict(
            connection=connection,
            event_id=e.event_id[:200],
            stream=e.stream,
            payload=json.dumps(
                {
                    "id": e.external_id,
                    "version": e.version,
                    "record": e.record,
                    "deleted": e.deleted,
                },
                ensure_ascii=False,
                default=str,
            ),
            status="pending",
            attempts=0,
            trace_id=trace_id,
            received_at=now,
        )
        for e in events
    ]


def complete_handshake(*, engine: SyncEngine, connection: str, reply: WebhookReply) -> WebhookReply:
    """Keep what a handshake hands over (a secret, stored encrypted) before it is answered."""
    if reply.remember:
        from spojka.sync import service

        service.update_connection_config(db=engine.db, name=connection, values=reply.remember)
        engine.reload()  # the connector is built again with the new setting
        log.info("sync.webhook.handshake", connection=connection, kept=sorted(reply.remember))
    metrics.WEBHOOKS.labels(connection, "handshake").inc()
    return WebhookReply(status=reply.status, headers=reply.headers, body=reply.body)


def accepted_reply(
    *, engine: SyncEngine, connection: str, stored: int, duplicates: int
) -> WebhookReply | None:
    """The vendor's own answer to a stored delivery, if it expects one (Xero)."""
    connector = engine.runtime(connection).connector
    return connector.webhook_accepted(stored=stored, duplicates=duplicates)


INBOX_COLS = (
    "connection",
    "event_id",
    "stream",
    "payload",
    "status",
    "attempts",
    "trace_id",
    "received_at",
)
# An id-only event whose record could not be fetched: its dead letter is replayed by
# fetching again (``fetch_record``), not by ingesting the stored payload.
FETCH_ERROR = "FetchError"


# rows per INSERT statement: 8 columns x 100 rows stays below every driver's parameter limit
INSERT_ROWS = 100


def store_groups(conn: sa.Connection, groups: Sequence[list[dict[str, object]]]) -> list[int]:
    """Insert the inbox rows of several deliveries inside the caller's transaction; return,
    per delivery, how many were new (a redelivered event id is ignored by the unique key).

    The receiver's hot path: multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` on the
    driver's cursor, one statement (one round trip on PostgreSQL) per hundred rows. When
    two deliveries of one batch carry the same event id, the first one stores it."""
    counts = [0] * len(groups)
    flat = [(index, row) for index, rows in enumerate(groups) for row in rows]
    if not flat:
        return counts
    stamp = WEBHOOK.c.received_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    one = f"({', '.join([mark] * len(INBOX_COLS))})"
    head = f"INSERT INTO {WEBHOOK.name} ({', '.join(INBOX_COLS)}) VALUES "
    tail = " ON CONFLICT (connection, event_id) DO NOTHING RETURNING connection, event_id"
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(flat), INSERT_ROWS):
            part = flat[start : start + INSERT_ROWS]
            params: list[object] = []
            for _, row in part:
                values = [row[c] for c in INBOX_COLS]
                if stamp is not None:
                    values[-1] = stamp(values[-1])
                params.extend(values)
            cursor.execute(head + ", ".join([one] * len(part)) + tail, params)
            new = {(str(c), str(e)) for c, e in cursor.fetchall()}
            for index, row in part:
                key = (str(row["connection"]), str(row["event_id"]))
                if key in new:
                    new.discard(key)
                    counts[index] += 1
    finally:
        cursor.close()
    return counts


def store(conn: sa.Connection, rows: list[dict[str, object]]) -> int:
    """Insert inbox rows inside the caller's transaction; return how many were new."""
    return store_groups(conn, [rows])[0]


def receive(
    *, engine: SyncEngine, connection: str, headers: Mapping[str, str], body: bytes
) -> Receipt:
    """Verify a delivery and store its events durably (its own transaction)."""
    rows = verify(engine=engine, connection=connection, headers=headers, body=body)
    with engine.db.begin() as conn:
        stored = store(conn, rows)
    metrics.WEBHOOKS.labels(connection, "stored").inc(stored)
    metrics.WEBHOOKS.labels(connection, "duplicate").inc(len(rows) - stored)
    return Receipt(stored=stored, duplicates=len(rows) - stored)


Outcome = int | BaseException


def _settle(answers: list[tuple[asyncio.Future[int], Outcome]]) -> None:
    """Resolve a batch's waiting requests on their event loop (one wake-up per batch)."""
    for future, outcome in answers:
        if future.done():  # the client went away meanwhile
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


@dataclass
class _Waiting:
    rows: list[dict[str, object]]
    future: Future[int] | asyncio.Future[int]
    loop: asyncio.AbstractEventLoop | None = None


class InboxWriter:
    """Group commit: one thread stores the events of all concurrent requests in one
    transaction, then answers each request. Every 2xx still follows its own commit, but
    a busy receiver pays one commit per batch instead of one per request.

    On SQLite the writer's own connection commits with ``synchronous=FULL`` (the WAL is
    fsynced at every commit): an acknowledged event survives a killed process *and* a
    power cut or OS crash. The rest of Spojka keeps WAL + ``NORMAL``, which survives a
    killed process but may lose the last commits on power loss. Group commit pays that
    fsync once per batch, not once per event."""

    def __init__(self, db: sa.Engine, *, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self.last_request = 0.0  # monotonic time of the newest delivery
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="spojka-inbox", daemon=True)
        self._thread.start()

    def submit(self, rows: list[dict[str, object]]) -> Future[int]:
        """Queue a delivery's rows from any thread; the future holds how many were new."""
        future: Future[int] = Future()
        self.last_request = time.monotonic()
        self._queue.put(_Waiting(rows, future))
        return future

    async def stored(self, rows: list[dict[str, object]]) -> int:
        """Store a delivery's rows with the next group commit; return how many were new."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self.last_request = time.monotonic()
        self._queue.put(_Waiting(rows, future, loop))
        return await future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _connect(self) -> sa.Connection:
        conn = self.db.connect()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=FULL")
            conn.commit()
        return conn

    def _batch(self, first: _Waiting) -> list[_Waiting]:
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)
                break
            batch.append(nxt)
        return batch

    def _loop(self) -> None:
        conn: sa.Connection | None = None
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = self._batch(item)
                outcomes: list[Outcome]
                try:
                    if conn is None:
                        conn = self._connect()
                    with conn.begin():
                        outcomes = list(store_groups(conn, [w.rows for w in batch]))
                except Exception as exc:  # nothing was committed: every request gets the error
                    if conn is not None:
                        conn.close()  # a broken connection is not used again
                        conn = None
                    outcomes = [exc] * len(batch)
                self._answer(batch, outcomes)
        finally:
            if conn is not None:
                conn.close()

    @staticmethod
    def _answer(batch: list[_Waiting], outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], Outcome]]] = {}
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.rows and isinstance(outcome, int):
                name = str(waiting.rows[0]["connection"])
                metrics.WEBHOOKS.labels(name, "stored").inc(outcome)
                metrics.WEBHOOKS.labels(name, "duplicate").inc(len(waiting.rows) - outcome)
            if waiting.loop is not None:
                assert isinstance(waiting.future, asyncio.Future)
                by_loop.setdefault(waiting.loop, []).append((waiting.future, outcome))
            elif isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, answers)


# -- processing ----------------------------------------------------------------------------


def _event(row: sa.Row[tuple[object, ...]]) -> WebhookEvent:
    data = json.loads(str(row.payload))
    return WebhookEvent(
        event_id=str(row.event_id),
        stream=str(row.stream),
        external_id=data["id"],
        version=data.get("version"),
        record=data.get("record"),
        deleted=bool(data.get("deleted")),
    )


def fetch_record(runtime: ConnectionRuntime, stream_name: str, external_id: str) -> Record:
    """The current record of an id-only event, read from its system (NotFoundError if none)."""
    stream = runtime.connector.stream(stream_name)
    record = runtime.connector.read_one(stream, external_id)
    if record is None:
        raise NotFoundError(f"{runtime.name}: {stream_name} record {external_id!r} not found")
    return record


@dataclass
class _Fetches:
    """Outcome of completing id-only events: records to apply, rows to try again later."""

    events: dict[int, WebhookEvent]  # inbox row id → event ready to apply
    held: set[int]  # waiting for a retry, or dead-lettered


def _complete(engine: SyncEngine, rows: Sequence[sa.Row[tuple[object, ...]]]) -> _Fetches:
    """Fetch the records of id-only events (outside any transaction; once per record).

    Transient failures — and "not found", since many systems announce a record before
    it can be read — wait with exponential backoff; a permanent failure or the last
    attempt becomes a dead letter. A fetched record carries its own version, so an old
    event fetched late applies the current state once and later ones are unchanged."""
    events = {int(str(row.id)): _event(row) for row in rows}
    held: set[int] = set()
    outcomes: dict[tuple[str, str, str], Record | SpojkaError] = {}
    retries: list[dict[str, object]] = []
    dead: list[dict[str, object]] = []
    now = utcnow()
    for row in rows:
        row_id = int(str(row.id))
        event = events[row_id]
        if event.record is not None or event.deleted:
            continue
        name = str(row.connection)
        key = (name, event.stream, event.external_id)
        if key not in outcomes:
            try:
                runtime = engine.runtime(name)
                engine._rate_limit(runtime)
                with tracing.trace_context(str(row.trace_id) if row.trace_id else None):
                    outcomes[key] = fetch_record(runtime, event.stream, event.external_id)
            except SpojkaError as exc:
                outcomes[key] = exc
            except Exception as exc:  # a connector bug must not block the inbox
                outcomes[key] = PermanentError(f"{type(exc).__name__}: {exc}")
        outcome = outcomes[key]
        if not isinstance(outcome, SpojkaError):
            events[row_id] = replace(event, record=outcome)
            continue
        held.add(row_id)
        attempts = int(str(row.attempts)) + 1
        try:
            settings = engine.runtime(name).settings
        except SpojkaError:
            settings = SyncSettings()
        retryable = isinstance(outcome, TransientError | NotFoundError)
        if retryable and attempts < settings.max_attempts:
            metrics.WEBHOOKS.labels(name, "retry").inc()
            delay = rules.backoff_delay(
                attempts,
                base_s=settings.retry_base_s,
                cap_s=settings.retry_cap_s,
                retry_after=getattr(outcome, "retry_after", None),
                max_retry_after_s=settings.max_retry_after_s,
                rand=engine.rand,
            )
            retries.append(
                dict(
                    b_id=row_id,
                    b_attempts=attempts,
                    b_next=time.time() + delay,
                    b_error=outcome.message[:2000],
                )
            )
            continue
        dead.append(_dead_letter(engine, row, event, outcome, attempts, now))
    if retries or dead:
        _hold(engine, retries, dead, now)
    return _Fetches(events=events, held=held)


def _dead_letter(
    engine: SyncEngine,
    row: sa.Row[tuple[object, ...]],
    event: WebhookEvent,
    error: SpojkaError,
    attempts: int,
    now: datetime,
) -> dict[str, object]:
    name = str(row.connection)
    entity = label = None
    try:
        runtime = engine.runtime(name)
        sm = runtime.mapping.for_stream(event.stream) if runtime.mapping else None
        entity, label = (sm.entity if sm else None), runtime.mapping_label
    except SpojkaError:
        pass
    log.warning(
        "sync.webhook.fetch_failed", connection=name, id=event.external_id, error=error.message
    )
    return dict(
        d_id=int(str(row.id)),
        connection=name,
        stream=event.stream,
        entity=entity,
        direction="inbound",
        external_id=event.external_id,
        payload=json.dumps(
            {"id": event.external_id, "version": event.version, "event_id": event.event_id}
        ),
        response=json.dumps(error.detail, default=str) if error.detail else None,
        error=f"fetching the record of an id-only webhook failed: {error.message}"[:2000],
        error_class=FETCH_ERROR,
        mapping_version=label,
        attempts=attempts,
        trace_id=row.trace_id,
        status="open",
        created_at=now,
        updated_at=now,
    )


def _hold(
    engine: SyncEngine,
    retries: list[dict[str, object]],
    dead: list[dict[str, object]],
    now: datetime,
) -> None:
    """Record retry times and dead letters of failed fetches (one short transaction)."""
    with engine.db.begin() as conn:
        if retries:
            conn.execute(
                WEBHOOK.update()
                .where(WEBHOOK.c.id == sa.bindparam("b_id"), WEBHOOK.c.status == "pending")
                .values(
                    attempts=sa.bindparam("b_attempts"),
                    next_attempt_at=sa.bindparam("b_next"),
                    error=sa.bindparam("b_error"),
                ),
                retries,
            )
        if dead:
            conn.execute(
                WEBHOOK.update()
                .where(WEBHOOK.c.id.in_([d["d_id"] for d in dead]), WEBHOOK.c.status == "pending")
                .values(status="dead", processed_at=now)
            )
            conn.execute(DLQ.insert(), [{k: v for k, v in d.items() if k != "d_id"} for d in dead])
    for d in dead:
        metrics.WEBHOOKS.labels(str(d["connection"]), "dead").inc()


def _due(engine: SyncEngine, limit: int, now: float) -> Sequence[sa.Row[tuple[object, ...]]]:
    """Pending events in arrival order, except those waiting for a retry after ``now``."""
    with engine.db.connect() as conn:
        return conn.execute(
            sa.select(WEBHOOK)
            .where(
                WEBHOOK.c.status == "pending",
                sa.or_(
                    WEBHOOK.c.next_attempt_at.is_(None),
                    WEBHOOK.c.next_attempt_at <= now,
                ),
            )
            .order_by(WEBHOOK.c.id)
            .limit(limit)
        ).all()


def process_pending(*, engine: SyncEngine, limit: int = 10_000, batch: int = 200) -> int:
    """Apply stored events in arrival order; a failing group is marked failed, never blocks.

    Id-only events are completed with the record fetched from the connector first; one
    whose fetch failed is tried again by a later call, once its retry time has come."""
    done = 0
    started = time.time()
    while done < limit:
        candidates = _due(engine, min(batch, limit - done), started)
        if not candidates:
            break
        fetched = _complete(engine, candidates)
        done += len(fetched.held)
        ready = [int(str(r.id)) for r in candidates if int(str(r.id)) not in fetched.held]
        if ready:
            done += _apply(engine, ready, fetched.events)
    return done


def _apply(engine: SyncEngine, ids: list[int], events: dict[int, WebhookEvent]) -> int:
    """Ingest the given pending events in one transaction (claimed: another worker on
    PostgreSQL skips them); a connection whose group fails is marked failed."""
    failed: tuple[str, list[int], str] | None = None
    try:
        with engine.db.begin() as conn:
            stmt = (
                sa.select(WEBHOOK.c.id, WEBHOOK.c.connection)
                .where(WEBHOOK.c.id.in_(ids), WEBHOOK.c.status == "pending")
                .order_by(WEBHOOK.c.id)
            )
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            claimed = conn.execute(stmt).all()
            by_connection: dict[str, list[int]] = {}
            for row in claimed:
                by_connection.setdefault(str(row.connection), []).append(int(row.id))
            for name, group in by_connection.items():
                try:
                    engine.ingest_events(conn, engine.runtime(name), [events[i] for i in group])
                except SpojkaError as exc:
                    failed = (name, group, exc.message)
                    raise
                conn.execute(
                    WEBHOOK.update()
                    .where(WEBHOOK.c.id.in_(group))
                    .values(
                        status="processed",
                        attempts=WEBHOOK.c.attempts + 1,
                        processed_at=utcnow(),
                    )
                )
                metrics.WEBHOOKS.labels(name, "processed").inc(len(group))
            return len(claimed)
    except SpojkaError:
        if failed is None:
            raise
        name, group, error = failed
        log.warning("sync.webhook.failed", connection=name, error=error)
        with engine.db.begin() as conn:
            conn.execute(
                WEBHOOK.update()
                .where(WEBHOOK.c.id.in_(group))
                .values(
                    status="failed",
                    error=error[:2000],
                    attempts=WEBHOOK.c.attempts + 1,
                    processed_at=utcnow(),
                )
            )
        metrics.WEBHOOKS.labels(name, "failed").inc(len(group))
        return len(group)


class WebhookWorker:
    """A thread that drains the inbox whenever woken (and every ``interval`` seconds)."""

    def __init__(self, engine: SyncEngine, *, interval: float = 1.0, settle: float = 0.2) -> None:
        self.engine = engine
        self.interval = interval
        self.settle = settle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spojka-webhooks", daemon=True)
        self._target_errors: dict[str, str] = {}
        self._checked = 0.0  # monotonic time of the last look for removed connections

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _deliver(self, target: str) -> None:
        """Deliver to one target; one that cannot be loaded (e.g. a secret reference that does
        not resolve) is reported once per distinct error and never holds up the others."""
        try:
            self.engine.deliver(target, until_idle=False)
        except SpojkaError as exc:
            if self._target_errors.get(target) != exc.message:
                log.error("sync.delivery.target_unavailable", connection=target, error=exc.message)
            self._target_errors[target] = exc.message
        else:
            self._target_errors.pop(target, None)

    def _forget_removed(self) -> None:
        """A connection removed by another process (``spojka sync disconnect``) stops being
        used here too: its webhooks get 404, nothing more is queued or sent to it."""
        now = time.monotonic()
        if now - self._checked < self.interval:
            return
        self._checked = now
        used = self.engine.cached_connections() | set(self.engine.subscribers_all())
        if not used:
            return
        with self.engine.db.connect() as conn:
            stored = set(conn.execute(sa.select(CONNECTION.c.name)).scalars())
        if used - stored:
            log.info("sync.connections_removed", connections=sorted(used - stored))
            self.engine.reload()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            # let a burst of deliveries gather: intake answers first, processing in batches
            self._stop.wait(self.settle)
            self._wake.clear()
            try:
                self._forget_removed()
                process_pending(engine=self.engine, batch=500)
                for target in self.engine.subscribers_all():
                    self._deliver(target)
            except Exception as exc:  # keep the worker alive; the inbox keeps the events
                log.error("sync.webhook.worker_error", error=f"{type(exc).__name__}: {exc}")
