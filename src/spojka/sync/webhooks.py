"""Webhook intake: verify, store durably, answer; process asynchronously from the inbox.

An event is committed to ``sync_webhook_event`` before the caller gets its 2xx, and the
``(connection, event_id)`` unique key drops redeliveries. A background worker (or
``spojka sync webhooks``) applies stored events through the same ingest path as polling,
so de-duplication by (id, version), ownership and conflicts apply to them equally.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import sqlalchemy as sa

from spojka.connectors.base import WebhookEvent, WebhookReply
from spojka.core import tracing
from spojka.core.db import utcnow
from spojka.core.errors import SpojkaError
from spojka.core.logging import get_logger
from spojka.sync import metrics
from spojka.sync.engine import SyncEngine
from spojka.sync.store import WEBHOOK, insert_ignore

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


def store(conn: sa.Connection, rows: list[dict[str, object]]) -> int:
    """Insert inbox rows inside the caller's transaction; return how many were new."""
    stored = 0
    for row in rows:
        inserted = conn.execute(insert_ignore(conn, WEBHOOK).values(**row).returning(WEBHOOK.c.id))
        stored += len(inserted.all())
    return stored


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


class InboxWriter:
    """Group commit: one thread stores the events of all concurrent requests in one
    transaction, then answers each request. Every 2xx still follows its own commit, but
    a busy receiver pays one commit per batch instead of one per request."""

    def __init__(self, db: sa.Engine, *, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[list[dict[str, object]], Future[int]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name="spojka-inbox", daemon=True)
        self._thread.start()

    def submit(self, rows: list[dict[str, object]]) -> Future[int]:
        future: Future[int] = Future()
        self._queue.put((rows, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            try:
                with self.db.begin() as conn:
                    counts = [store(conn, rows) for rows, _ in batch]
            except Exception as exc:  # nothing was committed: every request gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (rows, future), stored in zip(batch, counts, strict=True):
                if rows:
                    name = str(rows[0]["connection"])
                    metrics.WEBHOOKS.labels(name, "stored").inc(stored)
                    metrics.WEBHOOKS.labels(name, "duplicate").inc(len(rows) - stored)
                future.set_result(stored)


def _events(items: list[sa.Row[tuple[object, ...]]]) -> list[WebhookEvent]:
    events = []
    for row in items:
        data = json.loads(str(row.payload))
        events.append(
            WebhookEvent(
                event_id=str(row.event_id),
                stream=str(row.stream),
                external_id=data["id"],
                version=data.get("version"),
                record=data.get("record"),
                deleted=bool(data.get("deleted")),
            )
        )
    return events


def process_pending(*, engine: SyncEngine, limit: int = 10_000, batch: int = 200) -> int:
    """Apply stored events in arrival order; a failing group is marked failed, never blocks."""
    done = 0
    while done < limit:
        failed: tuple[str, list[int], str] | None = None
        try:
            with engine.db.begin() as conn:
                stmt = (
                    sa.select(WEBHOOK)
                    .where(WEBHOOK.c.status == "pending")
                    .order_by(WEBHOOK.c.id)
                    .limit(min(batch, limit - done))
                )
                if conn.dialect.name == "postgresql":
                    stmt = stmt.with_for_update(skip_locked=True)
                rows = conn.execute(stmt).all()
                if not rows:
                    break
                by_connection: dict[str, list[sa.Row[tuple[object, ...]]]] = {}
                for row in rows:
                    by_connection.setdefault(row.connection, []).append(row)
                for name, items in by_connection.items():
                    ids = [int(str(row.id)) for row in items]
                    try:
                        engine.ingest_events(conn, engine.runtime(name), _events(items))
                    except SpojkaError as exc:
                        failed = (name, ids, exc.message)
                        raise
                    conn.execute(
                        WEBHOOK.update()
                        .where(WEBHOOK.c.id.in_(ids))
                        .values(
                            status="processed",
                            attempts=WEBHOOK.c.attempts + 1,
                            processed_at=utcnow(),
                        )
                    )
                    metrics.WEBHOOKS.labels(name, "processed").inc(len(ids))
                done += len(rows)
        except SpojkaError:
            if failed is None:
                raise
            name, ids, error = failed
            log.warning("sync.webhook.failed", connection=name, error=error)
            with engine.db.begin() as conn:
                conn.execute(
                    WEBHOOK.update()
                    .where(WEBHOOK.c.id.in_(ids))
                    .values(
                        status="failed",
                        error=error[:2000],
                        attempts=WEBHOOK.c.attempts + 1,
                        processed_at=utcnow(),
                    )
                )
            metrics.WEBHOOKS.labels(name, "failed").inc(len(ids))
            done += len(ids)
    return done


class WebhookWorker:
    """A thread that drains the inbox whenever woken (and every ``interval`` seconds)."""

    def __init__(self, engine: SyncEngine, *, interval: float = 1.0, settle: float = 0.2) -> None:
        self.engine = engine
        self.interval = interval
        self.settle = settle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spojka-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            # let a burst of deliveries gather: intake answers first, processing in batches
            self._stop.wait(self.settle)
            self._wake.clear()
            try:
                process_pending(engine=self.engine, batch=500)
                if self.engine.subscribers_all():
                    for target in self.engine.subscribers_all():
                        self.engine.deliver(target, until_idle=False)
            except Exception as exc:  # keep the worker alive; the inbox keeps the events
                log.error("sync.webhook.worker_error", error=f"{type(exc).__name__}: {exc}")
