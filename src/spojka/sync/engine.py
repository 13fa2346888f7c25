"""The sync engine: change capture, canonical store, ownership, outbox deliveries, DLQ.

Plain functions over a database engine, driven by a loop. Crash safety comes from the
database alone: each page's effects (records, versions, links, conflicts, deliveries, DLQ)
and the stream's checkpoint commit in one transaction; every write to a target carries an
idempotency key derived from the source event and the step, so a redelivery after a crash
is answered by the target instead of creating a second record.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from spojka.connectors import registry
from spojka.connectors.base import Connector, Stream, WebhookEvent
from spojka.core import tracing
from spojka.core.db import utcnow
from spojka.core.errors import ConfigError, NotFoundError, SpojkaError, TransientError
from spojka.core.logging import get_logger
from spojka.governance.secret_store import default_store, resolve_secrets
from spojka.sync import metrics, rules
from spojka.sync.mapping import (
    RecordError,
    StreamMapping,
    SyncMapping,
    check_contract,
    parse_mapping,
)
from spojka.sync.store import (
    BUCKET,
    CONFLICT,
    CONNECTION,
    CURSOR,
    DELIVERY,
    DLQ,
    LINK,
    OWNERSHIP,
    RECORD,
    VERSION,
    bulk_insert,
    chunks,
    db_value,
    insert_ignore,
    update_sql,
)

RECORD_COLS = (
    "canonical_id",
    "entity",
    "version",
    "data",
    "data_hash",
    "mapping_version",
    "source_system",
    "deleted",
    "updated_at",
)
VERSION_COLS = ("canonical_id", "version", "data", "source_system", "mapping_version", "changed_at")
LINK_COLS = (
    "system",
    "entity",
    "external_id",
    "canonical_id",
    "source_version",
    "source_hash",
    "synced_version",
    "updated_at",
)
LINK_UPDATE_COLS = ("source_version", "source_hash", "synced_version", "updated_at")

log = get_logger("spojka.sync")

#: what a link's ``written_hash`` holds once Spojka deleted the record in that system
DELETED_HASH = "deleted"


class LinkRow(NamedTuple):
    """The link columns ingest needs, in the order ``_links`` selects them."""

    source_hash: str | None
    source_version: str | None
    id: int
    canonical_id: str
    written_version: str | None
    synced_version: int | None


_NOT_LINKED = "\x00 no link"  # a hash no link holds: ``links.get`` in one lookup


class Changed(NamedTuple):
    """A known record whose source content changed: what ``_apply_changes`` merges."""

    ext: str
    version: str | None
    src_hash: str
    data: dict[str, Any]
    data_hash: str
    link: LinkRow
    cleared: list[str]


@dataclass(frozen=True)
class SyncSettings:
    """Per-connection knobs (``sync_connection.settings``)."""

    overlap_s: float = 300.0
    max_attempts: int = 5
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    max_retry_after_s: float = 3600.0
    rate_per_s: float | None = None
    burst: float = 10.0
    poll_interval_s: float | None = None  # how often to poll; None: on demand and webhooks only
    delivery_batch: int = 200
    #: delete (or archive) records in this system when their owner deleted them; off:
    #: each such delete waits as a conflict for a person
    propagate_deletes: bool = False

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> SyncSettings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values or {}) - known
        if unknown:
            raise ConfigError(f"unknown sync setting(s): {', '.join(sorted(unknown))}")
        return cls(**dict(values or {}))


@dataclass
class ConnectionRuntime:
    name: str
    kind: str
    connector: Connector
    mapping: SyncMapping | None
    settings: SyncSettings

    @property
    def mapping_label(self) -> str | None:
        return self.mapping.label if self.mapping else None


@dataclass
class IngestStats:
    applied: int = 0
    created: int = 0
    unchanged: int = 0
    stale: int = 0
    echoes: int = 0
    conflicts: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    deliveries: int = 0

    def add(self, other: IngestStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class StreamReport:
    connection: str
    stream: str
    pages: int = 0
    records: int = 0
    seconds: float = 0.0
    cursor: str | None = None
    stats: IngestStats = field(default_factory=IngestStats)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DeliveryReport:
    connection: str
    delivered: int = 0
    skipped: int = 0
    retried: int = 0
    dead_lettered: int = 0


def _now_ts() -> datetime:
    return datetime.now(UTC)


def _dumps(value: Any) -> str:
    return rules.canonical_json(value)


class SyncEngine:
    """Runs syncs for the connections stored in one database."""

    def __init__(self, db: Engine, *, rand: random.Random | None = None) -> None:
        self.db = db
        self.rand = rand or random.Random()
        self._runtimes: dict[str, ConnectionRuntime] = {}
        self._policy: rules.OwnershipPolicy | None = None
        self._subscribers: dict[str, list[tuple[str, StreamMapping]]] | None = None
        self._delivered: dict[str, DeliveryReport] = {}

    # -- configuration ---------------------------------------------------------------
    def reload(self) -> None:
        """Forget cached connections, mappings and ownership (after a config change)."""
        for runtime in self._runtimes.values():
            runtime.connector.close()
        self._runtimes.clear()
        self._policy = None
        self._subscribers = None

    def close(self) -> None:
        self.reload()

    def cached_connections(self) -> frozenset[str]:
        """Connections already loaded (their checks need no database read)."""
        return frozenset(self._runtimes)

    def runtime(self, name: str) -> ConnectionRuntime:
        if name in self._runtimes:
            return self._runtimes[name]
        with self.db.connect() as conn:
            row = conn.execute(sa.select(CONNECTION).where(CONNECTION.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no connection {name!r} (create it with `spojka sync connect`)")
        mapping = (
            parse_mapping(row.mapping_yaml, file=f"{name}.mapping") if row.mapping_yaml else None
        )
        runtime = ConnectionRuntime(
            name=name,
            kind=row.kind,
            connector=registry.create(row.kind, self._with_secrets(row.config)),
            mapping=mapping,
            settings=SyncSettings.from_dict(row.settings),
        )
        self._runtimes[name] = runtime
        return runtime

    def _with_secrets(self, config: dict[str, Any]) -> dict[str, Any]:
        with Session(self.db) as session:
            return resolve_secrets(session, default_store(), config)

    def policy(self) -> rules.OwnershipPolicy:
        if self._policy is None:
            with self.db.connect() as conn:
                rows = conn.execute(sa.select(OWNERSHIP)).all()
            self._policy = rules.OwnershipPolicy(
                owners={(r.entity, r.field): r.owner for r in rows},
                on_violation={(r.entity, r.field): r.on_violation for r in rows},
            )
        return self._policy

    def subscribers(self, entity: str) -> list[tuple[str, StreamMapping]]:
        """(connection, stream mapping) pairs that receive changes of an entity."""
        if self._subscribers is None:
            table: dict[str, list[tuple[str, StreamMapping]]] = {}
            with self.db.connect() as conn:
                rows = conn.execute(sa.select(CONNECTION.c.name, CONNECTION.c.mapping_yaml)).all()
            for row in rows:
                if not row.mapping_yaml:
                    continue
                mapping = parse_mapping(row.mapping_yaml, file=f"{row.name}.mapping")
                for sm in mapping.streams.values():
                    if sm.direction in ("out", "both"):
                        table.setdefault(sm.entity, []).append((row.name, sm))
            self._subscribers = table
        return self._subscribers.get(entity, [])

    def subscribers_all(self) -> list[str]:
        """Every connection that receives changes of some entity."""
        self.subscribers("")
        assert self._subscribers is not None
        return sorted({c for pairs in self._subscribers.values() for c, _ in pairs})

    # -- polling ---------------------------------------------------------------------
    def poll(
        self,
        name: str,
        *,
        streams: Sequence[str] | None = None,
        max_pages: int | None = None,
        deliver_each_page: bool = False,
    ) -> list[StreamReport]:
        """Read every inbound stream of a connection from its checkpoint to the end."""
        runtime = self.runtime(name)
        if runtime.mapping is None:
            raise ConfigError(f"connection {name!r} has no mapping")
        reports = []
        for sm in runtime.mapping.streams.values():
            if sm.direction == "out" or (streams and sm.stream not in streams):
                continue
            stream = runtime.connector.stream(sm.stream)
            reports.append(self._poll_stream(runtime, sm, stream, max_pages, deliver_each_page))
        return reports

    def _poll_stream(
        self,
        runtime: ConnectionRuntime,
        sm: StreamMapping,
        stream: Stream,
        max_pages: int | None,
        deliver_each_page: bool,
    ) -> StreamReport:
        report = StreamReport(connection=runtime.name, stream=stream.name)
        started = time.perf_counter()
        while max_pages is None or report.pages < max_pages:
            state = self._cursor_state(runtime.name, stream.name)
            if state["page_token"] is None and state["run_since"] is None:
                since = rules.cursor_since(
                    state["cursor_value"],
                    cursor_type=stream.cursor_type,
                    overlap_s=runtime.settings.overlap_s,
                )
            else:
                since = state["run_since"]
            page = runtime.connector.read_page(stream, since=since, page_token=state["page_token"])
            with self.db.begin() as conn:
                stats, page_max = self.ingest(
                    conn, runtime, sm, stream, page.records, origin="poll"
                )
                done = self._checkpoint(
                    conn,
                    runtime.name,
                    stream,
                    state,
                    since,
                    page_max,
                    page.next_token,
                    len(page.records),
                    stats,
                )
            report.pages += 1
            report.records += len(page.records)
            report.stats.add(stats)
            if deliver_each_page and stats.deliveries:
                for target in {c for c, _ in self.subscribers(sm.entity)} - {runtime.name}:
                    self._remember(self.deliver(target, until_idle=False))
            if done:
                break
        report.seconds = time.perf_counter() - started
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(CURSOR.c.cursor_value).where(
                    CURSOR.c.connection == runtime.name, CURSOR.c.stream == stream.name
                )
            ).first()
            report.cursor = row.cursor_value if row else None
            conn.execute(
                CURSOR.update()
                .where(CURSOR.c.connection == runtime.name, CURSOR.c.stream == stream.name)
                .values(
                    last_run_at=utcnow(),
                    last_run_records=report.records,
                    last_run_seconds=report.seconds,
                )
            )
        metrics.RATE.labels(runtime.name, stream.name).set(report.records_per_s)
        if self.db.dialect.name == "postgresql" and report.stats.created >= 10_000:
            # fresh statistics after a big first load, so the next run's lookups use indexes
            # (autovacuum would get there, but later)
            with self.db.begin() as conn:
                conn.exec_driver_sql("ANALYZE sync_link")
                conn.exec_driver_sql("ANALYZE sync_record")
        return report

    def _cursor_state(self, connection: str, stream: str) -> dict[str, Any]:
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(CURSOR).where(
                    CURSOR.c.connection == connection, CURSOR.c.stream == stream
                )
            ).first()
            if row is None:
                conn.execute(
                    insert_ignore(conn, CURSOR).values(
                        connection=connection, stream=stream, records_total=0
                    )
                )
                return {
                    "cursor_value": None,
                    "run_since": None,
                    "run_max": None,
                    "page_token": None,
                }
            return dict(row._mapping)

    def _checkpoint(
        self,
        conn: DbConnection,
        connection: str,
        stream: Stream,
        state: Mapping[str, Any],
        since: str | None,
        page_max: str | None,
        next_token: str | None,
        count: int,
        stats: IngestStats,
    ) -> bool:
        """Store the page's checkpoint; refuses if another worker moved the stream meanwhile."""
        run_max = rules.max_version(state.get("run_max"), page_max)
        values: dict[str, Any] = {"records_total": CURSOR.c.records_total + count}
        if stats.applied or stats.created:
            values["last_change_at"] = utcnow()
        if next_token is None:
            values.update(
                cursor_value=rules.max_version(state.get("cursor_value"), run_max),
                run_since=None,
                run_max=None,
                page_token=None,
            )
        else:
            values.update(
                run_since=since if since is not None else "", run_max=run_max, page_token=next_token
            )
        token = state.get("page_token")
        result = conn.execute(
            CURSOR.update()
            .where(
                CURSOR.c.connection == connection,
                CURSOR.c.stream == stream.name,
                CURSOR.c.page_token.is_(None) if token is None else CURSOR.c.page_token == token,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            raise TransientError(
                f"stream {connection}/{stream.name} was advanced by another worker; retry"
            )
        return next_token is None

    # -- the heart: one batch of source records into the canonical store ------------------
    def ingest(
        self,
        conn: DbConnection,
        runtime: ConnectionRuntime,
        sm: StreamMapping,
        stream: Stream,
        records: Iterable[Mapping[str, Any]],
        *,
        origin: str,
        deleted_ids: Iterable[str] = (),
    ) -> tuple[IngestStats, str | None]:
        """Apply a batch inside the caller's transaction; return stats and the newest cursor."""
        stats = IngestStats()
        if conn.dialect.name == "sqlite":
            # a bigger page cache for this connection keeps index pages of big batches in RAM
            conn.exec_driver_sql("PRAGMA cache_size = -65536")
        now = utcnow()
        now_db = db_value(conn, RECORD.c.updated_at, now)
        system, entity = runtime.name, sm.entity
        label = runtime.mapping_label
        trace_id = tracing.current_trace_id()
        pk, vkey, ckey = stream.primary_key, stream.version_key, stream.cursor_field
        dead: list[dict[str, Any]] = []

        def dead_letter(raw: Any, error: str, ext: str | None, error_class: str) -> None:
            dead.append(
                dict(
                    connection=system,
                    stream=stream.name,
                    entity=entity,
                    direction="inbound",
                    external_id=ext,
                    payload=_dumps(raw),
                    error=error,
                    error_class=error_class,
                    mapping_version=label,
                    attempts=1,
                    trace_id=trace_id,
                    status="open",
                    created_at=now,
                    updated_at=now,
                )
            )

        # one pass over the page: key, version and cursor value; duplicates in a page keep
        # their newest version
        batch: dict[str, tuple[Mapping[str, Any], str | None]] = {}
        cursor_values: list[str] = []
        source_hash, text_hash = rules.source_hash, rules.text_hash
        cursor_is_version = ckey is not None and ckey == vkey
        for raw in records:
            if "_error" in raw:
                dead_letter(raw, str(raw["_error"]), None, "ParseError")
                continue
            ext_raw = raw.get(pk)
            if ext_raw is None or ext_raw == "":
                dead_letter(raw, f"record has no primary key {pk!r}", None, "RecordError")
                continue
            ext = ext_raw if type(ext_raw) is str else str(ext_raw)
            version = raw.get(vkey) if vkey else None
            if version is not None and type(version) is not str:
                version = str(version)
            if cursor_is_version:
                if version is not None:
                    cursor_values.append(version)
            elif ckey:
                cursor_value = raw.get(ckey)
                if cursor_value is not None:
                    cursor_values.append(str(cursor_value))
            previous = batch.get(ext)
            if previous is None or rules.is_newer(version, previous[1]):
                batch[ext] = (raw, version)
            else:
                stats.stale += 1

        page_max = rules.newest(cursor_values)
        hashes: list[str] = []

        def hash_batch() -> None:
            hashes.extend([source_hash(raw) for raw, _ in batch.values()])

        links = self._links(conn, system, entity, list(batch), meanwhile=hash_batch)
        new_records: list[tuple[Any, ...]] = []
        new_versions: list[tuple[Any, ...]] = []
        new_links: list[tuple[Any, ...]] = []
        link_updates: list[tuple[Any, ...]] = []
        changed: list[Changed] = []
        fanout: list[tuple[str, int, str]] = []
        fresh: list[tuple[str, str | None, str, str, str]] = []
        canonical_text = sm.canonical_text

        known: list[tuple[str, Mapping[str, Any], str | None, str]] = []
        unchanged = 0
        for (ext, (raw, version)), src_hash in zip(batch.items(), hashes, strict=True):
            linked_hash = links.get(ext, _NOT_LINKED)
            if linked_hash is not _NOT_LINKED:
                # the bulk of a re-run: the raw record hashes as the link remembers it
                if src_hash == linked_hash:
                    unchanged += 1
                else:
                    known.append((ext, raw, version, src_hash))
                continue
            try:
                data_text = canonical_text(raw)
            except RecordError as exc:
                dead_letter(raw, exc.message, ext, "RecordError")
                metrics.ERRORS.labels(system, stream.name, "record").inc()
                continue
            fresh.append((ext, version, src_hash, data_text, text_hash(data_text)))
        stats.unchanged += unchanged

        rows = self._link_rows(conn, system, entity, [k[0] for k in known]) if known else {}
        for ext, raw, version, src_hash in known:
            row = rows[ext]
            seen = row.source_version
            # An equal version is not proof of equal content: systems such as Redmine stamp
            # `updated_on` to the second, so two edits within one second share it. Only a
            # strictly older version is stale; an equal one goes on to the content hash.
            if (
                version is not None
                and seen is not None
                and version != seen
                and not rules.is_newer(version, seen)
            ):
                stats.stale += 1
                continue
            if version is not None and version == row.written_version:
                # our own write coming back: remember it, start no new round
                stats.echoes += 1
                link_updates.append((version, src_hash, row.synced_version, now_db, row.id))
                continue
            try:
                data_text = canonical_text(raw)
            except RecordError as exc:
                dead_letter(raw, exc.message, ext, "RecordError")
                metrics.ERRORS.labels(system, stream.name, "record").inc()
                continue
            data = json.loads(data_text)
            changed.append(
                Changed(ext, version, src_hash, data, text_hash(data_text), row, sm.cleared(raw))
            )

        if fresh:
            # outbox rows only when some other connection subscribes to the entity
            subscribed = any(c != system for c, _ in self.subscribers(entity))
            for cid, (ext, version, src_hash, data_text, data_hash) in zip(
                rules.new_canonical_ids(len(fresh)), fresh, strict=True
            ):
                new_records.append(
                    (cid, entity, 1, data_text, data_hash, label, system, False, now_db)
                )
                new_versions.append((cid, 1, data_text, system, label, now_db))
                new_links.append((system, entity, ext, cid, version, src_hash, 1, now_db))
                if subscribed:
                    event = f"{system}:{stream.name}:{ext}:{version or src_hash}"
                    fanout.append((cid, 1, event))
            stats.created += len(fresh)

        if changed:
            self._apply_changes(
                conn,
                runtime,
                sm,
                stream,
                changed,
                now,
                now_db,
                stats,
                new_versions,
                link_updates,
                fanout,
            )

        # plain executemany with tuples: no per-row statement or parameter processing
        bulk_insert(conn, RECORD, RECORD_COLS, new_records)
        bulk_insert(conn, VERSION, VERSION_COLS, new_versions)
        bulk_insert(conn, LINK, LINK_COLS, new_links)
        if link_updates:
            conn.exec_driver_sql(update_sql(conn, LINK, LINK_UPDATE_COLS, "id"), link_updates)
        for ext in deleted_ids:
            stats.deliveries += self._mark_deleted(conn, system, entity, ext, now, label)
        if dead:
            dead = self._new_dead_letters(conn, system, stream.name, dead)
        if dead:
            conn.execute(DLQ.insert(), dead)
            stats.dead_lettered += len(dead)
        if fanout:
            stats.deliveries += self._enqueue(conn, entity, fanout, exclude=system, now=now)
        stats.applied += len(new_records)
        metrics.RECORDS.labels(system, stream.name, "created").inc(stats.created)
        metrics.RECORDS.labels(system, stream.name, "unchanged").inc(stats.unchanged)
        return stats, page_max

    def _new_dead_letters(
        self, conn: DbConnection, system: str, stream: str, dead: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Drop items already open with the same input (overlap windows re-read records)."""
        ids = [d["external_id"] for d in dead if d["external_id"] is not None]
        known: set[tuple[str, str]] = set()
        for part in chunks(ids):
            known.update(
                (r.external_id, r.payload)
                for r in conn.execute(
                    sa.select(DLQ.c.external_id, DLQ.c.payload).where(
                        DLQ.c.connection == system,
                        DLQ.c.stream == stream,
                        DLQ.c.status == "open",
                        DLQ.c.external_id.in_(part),
                    )
                )
            )
        return [d for d in dead if (d["external_id"], d["payload"]) not in known]

    def _links(
        self,
        conn: DbConnection,
        system: str,
        entity: str,
        external_ids: list[str],
        *,
        meanwhile: Callable[[], None],
    ) -> dict[str, str | None]:
        """Source hashes of a batch's existing links, by external id; runs ``meanwhile``
        while PostgreSQL looks them up.

        This runs for every page, and on a re-run nearly every record only needs its hash
        compared: two columns through a plain driver cursor build the map in C.
        """
        found: dict[str, str | None] = {}
        if conn.dialect.name == "postgresql":
            # a join with the unnested id array is linear whatever plan the (often stale,
            # during a first big sync) statistics lead to; `= ANY(...)` could go quadratic
            sql = (
                "SELECT l.external_id, l.source_hash FROM unnest(%s::text[]) AS x(ext) "
                "JOIN sync_link l ON l.external_id = x.ext "
                "WHERE l.system = %s AND l.entity = %s"
            )
            driver = conn.connection.driver_connection
            assert driver is not None
            # pipeline mode: the queries go out at once and the server works on them while
            # this process hashes the page (the lookup is most of a re-run's database time)
            with driver.pipeline():
                cursors = []
                for part in chunks(external_ids, 5000):
                    cursor = driver.cursor()
                    cursor.execute(sql, (list(part), system, entity))
                    cursors.append(cursor)
                meanwhile()
                for cursor in cursors:
                    found.update(cursor.fetchall())
                    cursor.close()
            return found
        meanwhile()
        with self._cursor(conn) as cursor:
            for part in chunks(external_ids):
                cursor.execute(
                    "SELECT external_id, source_hash FROM sync_link WHERE system = ? AND "
                    f"entity = ? AND external_id IN ({', '.join('?' * len(part))})",
                    (system, entity, *part),
                )
                found.update(cursor.fetchall())
        return found

    def _link_rows(
        self, conn: DbConnection, system: str, entity: str, external_ids: list[str]
    ) -> dict[str, LinkRow]:
        """Whole links of the (few) records of a batch whose content changed."""
        found: dict[str, LinkRow] = {}
        for part in chunks(external_ids):
            for row in conn.execute(
                sa.select(LINK.c.external_id, *(LINK.c[name] for name in LinkRow._fields)).where(
                    LINK.c.system == system,
                    LINK.c.entity == entity,
                    LINK.c.external_id.in_(part),
                )
            ):
                found[row[0]] = LinkRow._make(row[1:])
        return found

    @staticmethod
    @contextlib.contextmanager
    def _cursor(conn: DbConnection) -> Iterator[Any]:
        """A driver cursor inside the connection's current transaction."""
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def _apply_changes(
        self,
        conn: DbConnection,
        runtime: ConnectionRuntime,
        sm: StreamMapping,
        stream: Stream,
        changed: list[Changed],
        now: datetime,
        now_db: Any,
        stats: IngestStats,
        new_versions: list[tuple[Any, ...]],
        link_updates: list[tuple[Any, ...]],
        fanout: list[tuple[str, int, str]],
    ) -> None:
        """Changes to known records: three-way merge under ownership, conflicts, versions."""
        system, entity = runtime.name, sm.entity
        cids = [c.link.canonical_id for c in changed]
        current: dict[str, Any] = {}
        open_conflicts: dict[str, dict[str, Any]] = {}
        for part in chunks(cids):
            for row in conn.execute(sa.select(RECORD).where(RECORD.c.canonical_id.in_(part))):
                current[row.canonical_id] = row
            for row in conn.execute(
                sa.select(
                    CONFLICT.c.id,
                    CONFLICT.c.canonical_id,
                    CONFLICT.c.field,
                    CONFLICT.c.incoming_system,
                ).where(CONFLICT.c.canonical_id.in_(part), CONFLICT.c.status == "open")
            ):
                open_conflicts.setdefault(row.canonical_id, {})[row.field] = row
        policy = self.policy()
        for ext, version, src_hash, data, data_hash, link, cleared in changed:
            cur = current.get(link.canonical_id)
            if cur is None:  # link without record: treat as new content for that id
                continue
            if cur.deleted:
                # the system that deleted it shows it again with a newer version (restored
                # from its bin): restore it; anything else about a deleted record waits
                seen = link.source_version
                if cur.source_system != system or (
                    version is not None and seen is not None and version == seen
                ):
                    stats.stale += 1
                    link_updates.append((version, src_hash, link.synced_version, now_db, link.id))
                    continue
            restore = bool(cur.deleted)
            if data_hash == cur.data_hash and not restore:
                stats.echoes += 1
                link_updates.append((version, src_hash, cur.version, now_db, link.id))
                continue
            ours = json.loads(cur.data)
            base = None
            if link.synced_version is not None and link.synced_version < cur.version:
                base_row = conn.execute(
                    sa.select(VERSION.c.data).where(
                        VERSION.c.canonical_id == link.canonical_id,
                        VERSION.c.version == link.synced_version,
                    )
                ).first()
                base = json.loads(base_row.data) if base_row else None
            conflicts_here = open_conflicts.get(link.canonical_id, {})
            result = rules.merge_change(
                entity=entity,
                system=system,
                base=base,
                current=ours,
                # an emptied source field is a change to empty, not a missing one
                incoming={**data, **dict.fromkeys(cleared)},
                policy=policy,
                open_conflict_fields=frozenset(conflicts_here),
            )
            for issue in result.issues:
                existing = conflicts_here.get(issue.field)
                if existing is not None and existing.incoming_system == system:
                    conn.execute(
                        CONFLICT.update()
                        .where(CONFLICT.c.id == existing.id)
                        .values(
                            incoming_value=_dumps(issue.incoming),
                            incoming_version=version,
                            incoming_at=now,
                        )
                    )
                    continue
                status = "open" if issue.action == "conflict" else "rejected"
                conn.execute(
                    CONFLICT.insert().values(
                        entity=entity,
                        canonical_id=link.canonical_id,
                        field=issue.field,
                        kind=issue.kind,
                        status=status,
                        current_value=_dumps(issue.current),
                        current_source=cur.source_system,
                        current_at=cur.updated_at,
                        incoming_value=_dumps(issue.incoming),
                        incoming_system=system,
                        incoming_version=version,
                        incoming_at=now,
                        created_at=now,
                    )
                )
                if status == "open":
                    stats.conflicts += 1
                else:
                    stats.rejected += 1
                log.info(
                    "sync.conflict",
                    entity=entity,
                    canonical_id=link.canonical_id,
                    field=issue.field,
                    kind=issue.kind,
                    action=issue.action,
                    system=system,
                )
            synced = link.synced_version
            if result.changed or restore:
                new_version = cur.version + 1
                try:
                    text = check_contract(sm.contract, result.data).canonical_json()
                except RecordError as exc:  # two valid sides that do not fit together
                    log.warning(
                        "sync.merge_invalid", canonical_id=link.canonical_id, error=exc.message
                    )
                    continue
                conn.execute(
                    RECORD.update()
                    .where(RECORD.c.canonical_id == link.canonical_id)
                    .values(
                        version=new_version,
                        data=text,
                        data_hash=rules.text_hash(text),
                        mapping_version=runtime.mapping_label,
                        source_system=system,
                        deleted=False,
                        updated_at=now,
                    )
                )
                new_versions.append(
                    (link.canonical_id, new_version, text, system, runtime.mapping_label, now_db)
                )
                event = f"{system}:{stream.name}:{ext}:{version or src_hash}"
                if restore:
                    event += f":restored@{new_version}"
                    self._withdraw_delete_decisions(conn, link.canonical_id, now)
                fanout.append((link.canonical_id, new_version, event))
                stats.applied += 1
                if not result.issues:
                    synced = new_version
            elif not result.issues:
                synced = cur.version
            link_updates.append((version, src_hash, synced, now_db, link.id))

    def _mark_deleted(
        self,
        conn: DbConnection,
        system: str,
        entity: str,
        ext: str,
        now: datetime,
        label: str | None,
    ) -> int:
        """Tombstone the record the owning system deleted, and pass the delete on.

        The record keeps its data and gets a new version marked deleted. A target whose
        connection allows deletes (``propagate_deletes``) and whose stream supports them
        gets a delete delivery with its own idempotency key; any other target still holding
        a copy gets an open ``delete`` conflict, so a person decides. Returns the number of
        deliveries queued.
        """
        row = conn.execute(
            sa.select(RECORD.c.canonical_id, RECORD.c.version, RECORD.c.data, RECORD.c.updated_at)
            .join(LINK, LINK.c.canonical_id == RECORD.c.canonical_id)
            .where(
                LINK.c.system == system,
                LINK.c.entity == entity,
                LINK.c.external_id == ext,
                RECORD.c.deleted.is_(False),
            )
        ).first()
        if row is None:
            return 0
        cid, version = row.canonical_id, row.version + 1
        conn.execute(
            RECORD.update()
            .where(RECORD.c.canonical_id == cid)
            .values(deleted=True, version=version, updated_at=now, source_system=system)
        )
        conn.execute(
            VERSION.insert().values(
                canonical_id=cid,
                version=version,
                data=row.data,
                source_system=f"{system}:deleted",
                mapping_version=label,
                changed_at=now,
            )
        )
        # the record's source hash is forgotten: if it shows up again, even unchanged,
        # ingest looks at it and restores it
        conn.execute(
            LINK.update()
            .where(LINK.c.system == system, LINK.c.entity == entity, LINK.c.external_id == ext)
            .values(source_hash=None, updated_at=now)
        )
        holders = set(
            conn.execute(
                sa.select(LINK.c.system).where(LINK.c.canonical_id == cid, LINK.c.system != system)
            ).scalars()
        )
        allowed: list[str] = []
        for target, tsm in self.subscribers(entity):
            if target == system or target not in holders:
                continue
            if self.deletes_allowed(target, tsm.stream):
                allowed.append(target)
                continue
            conn.execute(
                CONFLICT.insert().values(
                    entity=entity,
                    canonical_id=cid,
                    field="*",
                    kind="delete",
                    status="open",
                    current_value=row.data,
                    current_source=target,
                    current_at=row.updated_at,
                    incoming_value=_dumps(None),
                    incoming_system=system,
                    incoming_version=None,
                    incoming_at=now,
                    created_at=now,
                )
            )
            log.info("sync.delete_held", entity=entity, canonical_id=cid, target=target)
        if not allowed:
            return 0
        event = f"{system}:{entity}:{ext}:deleted@{version}"
        return self._enqueue(
            conn, entity, [(cid, version, event)], exclude=system, now=now, only=allowed
        )

    def _withdraw_delete_decisions(self, conn: DbConnection, cid: str, now: datetime) -> None:
        """A restored record needs no decision about deleting its copies any more."""
        conn.execute(
            CONFLICT.update()
            .where(
                CONFLICT.c.canonical_id == cid,
                CONFLICT.c.kind == "delete",
                CONFLICT.c.status == "open",
            )
            .values(
                status="resolved",
                resolution=_dumps({"restored": True}),
                resolved_by="spojka",
                resolved_at=now,
            )
        )

    def deletes_allowed(self, target: str, stream_name: str) -> bool:
        """May Spojka delete records in this target stream without asking a person?"""
        runtime = self.runtime(target)
        return runtime.settings.propagate_deletes and self.can_delete(target, stream_name)

    def can_delete(self, target: str, stream_name: str) -> bool:
        """Does the target's connector declare deletes for this stream?"""
        try:
            return self.runtime(target).connector.stream(stream_name).supports_deletes
        except SpojkaError:
            return False

    def _enqueue(
        self,
        conn: DbConnection,
        entity: str,
        fanout: list[tuple[str, int, str]],
        *,
        exclude: str | None,
        now: datetime,
        only: Iterable[str] | None = None,
    ) -> int:
        """Outbox rows for every subscriber (or the ``only`` ones); the idempotency key makes
        re-enqueueing a no-op."""
        chosen = None if only is None else set(only)
        targets = [
            (c, sm)
            for c, sm in self.subscribers(entity)
            if c != exclude and (chosen is None or c in chosen)
        ]
        if not targets:
            return 0
        trace_id = tracing.current_trace_id()
        stamp = time.time()
        rows = [
            dict(
                connection=target,
                stream=sm.stream,
                entity=entity,
                canonical_id=cid,
                canonical_version=version,
                source_event=event[:400],
                idempotency_key=rules.idempotency_key(event, f"deliver:{target}:{sm.stream}"),
                status="pending",
                attempts=0,
                next_attempt_at=stamp,
                trace_id=trace_id,
                created_at=now,
                updated_at=now,
            )
            for cid, version, event in fanout
            for target, sm in targets
        ]
        conn.execute(insert_ignore(conn, DELIVERY), rows)
        return len(rows)

    # -- webhooks: stored events → the same ingest path ------------------------------------
    def ingest_events(
        self, conn: DbConnection, runtime: ConnectionRuntime, events: Sequence[WebhookEvent]
    ) -> IngestStats:
        """Apply verified webhook events (already stored) inside the caller's transaction."""
        if runtime.mapping is None:
            raise ConfigError(f"connection {runtime.name!r} has no mapping")
        total = IngestStats()
        by_stream: dict[str, list[WebhookEvent]] = {}
        for event in events:
            by_stream.setdefault(event.stream, []).append(event)
        for stream_name, items in by_stream.items():
            sm = runtime.mapping.for_stream(stream_name)
            if sm is None:
                raise ConfigError(f"{runtime.name}: no mapping for stream {stream_name!r}")
            stream = runtime.connector.stream(stream_name)
            records = []
            for event in items:
                if event.deleted or event.record is None:
                    continue
                record = dict(event.record)
                record.setdefault(stream.primary_key, event.external_id)
                if stream.version_key and event.version is not None:
                    record.setdefault(stream.version_key, event.version)
                records.append(record)
            deleted = [e.external_id for e in items if e.deleted]
            stats, _ = self.ingest(
                conn, runtime, sm, stream, records, origin="webhook", deleted_ids=deleted
            )
            total.add(stats)
        return total

    # -- deliveries to targets -----------------------------------------------------------
    def deliver(
        self, name: str, *, until_idle: bool = True, max_rounds: int | None = None
    ) -> DeliveryReport:
        """Write pending outbox rows of one target connection; retry, dead-letter, go on."""
        runtime = self.runtime(name)
        report = DeliveryReport(connection=name)
        rounds = 0
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            now = time.time()
            with self.db.connect() as conn:
                due = conn.execute(
                    sa.select(DELIVERY)
                    .where(
                        DELIVERY.c.connection == name,
                        DELIVERY.c.status == "pending",
                        DELIVERY.c.next_attempt_at <= now,
                    )
                    .order_by(DELIVERY.c.id)
                    .limit(runtime.settings.delivery_batch)
                ).all()
                if not due:
                    if not until_idle:
                        break
                    wake = conn.execute(
                        sa.select(sa.func.min(DELIVERY.c.next_attempt_at)).where(
                            DELIVERY.c.connection == name, DELIVERY.c.status == "pending"
                        )
                    ).scalar()
                    if wake is None:
                        break
                    time.sleep(min(max(0.0, wake - time.time()), 5.0))
                    continue
            self._deliver_batch(runtime, due, report)
        self._refresh_gauges(name)
        return report

    def _deliver_batch(
        self, runtime: ConnectionRuntime, due: Sequence[Any], report: DeliveryReport
    ) -> None:
        """Write a batch to the target, then record all outcomes in one transaction.

        A crash between the writes and the commit repeats the writes with the same
        idempotency keys, which the target answers without creating anything again.
        """
        name = runtime.name
        cids = list({row.canonical_id for row in due})
        records: dict[str, Any] = {}
        links: dict[str, Any] = {}
        held: set[str] = set()  # records in an open conflict with this very target
        with self.db.connect() as conn:
            rec: Any
            link: Any
            for part in chunks(cids):
                for rec in conn.execute(
                    sa.select(
                        RECORD.c.canonical_id, RECORD.c.data, RECORD.c.version, RECORD.c.deleted
                    ).where(RECORD.c.canonical_id.in_(part))
                ):
                    records[rec.canonical_id] = rec
                for link in conn.execute(
                    sa.select(LINK).where(LINK.c.canonical_id.in_(part), LINK.c.system == name)
                ):
                    links[link.canonical_id] = link
                held.update(
                    conn.execute(
                        sa.select(CONFLICT.c.canonical_id).where(
                            CONFLICT.c.canonical_id.in_(part),
                            CONFLICT.c.status == "open",
                            CONFLICT.c.incoming_system == name,
                        )
                    ).scalars()
                )
            bases = self._synced_data(conn, records, links)
        # outcomes, applied together at the end
        written: dict[str, dict[str, Any]] = {}  # canonical id -> link values
        done_ids: list[int] = []
        held_ids: list[int] = []
        retries: list[dict[str, Any]] = []
        dead: list[tuple[Any, Any, SpojkaError, str | None, int]] = []
        for row in due:
            sm = runtime.mapping.for_stream(row.stream) if runtime.mapping else None
            record = records.get(row.canonical_id)
            link = links.get(row.canonical_id)
            known = written.get(row.canonical_id)
            synced = known["synced_version"] if known else (link.synced_version if link else 0)
            if row.canonical_id in held:
                # never overwrite the target's side of an open conflict; the resolution
                # queues a fresh write
                held_ids.append(row.id)
                report.skipped += 1
                continue
            if record is None or sm is None or (synced or 0) >= record.version:
                # the target already holds this version (it was the source, or got it before)
                done_ids.append(row.id)
                report.skipped += 1
                continue
            external_id = known["external_id"] if known else (link.external_id if link else None)
            last_hash = known["written_hash"] if known else (link.written_hash if link else None)
            if last_hash == DELETED_HASH and not record.deleted:
                external_id = None  # Spojka deleted the copy; the restored record is new there
            data = json.loads(record.data)
            if record.deleted:
                if external_id is None or row.canonical_version != record.version:
                    # never written there, or a write overtaken by the delete: nothing to do
                    done_ids.append(row.id)
                    report.skipped += 1
                    continue
                target = {"deleted": external_id}
                target_hash = DELETED_HASH
            else:
                try:
                    target = sm.to_target(data)
                except RecordError as exc:
                    dead.append((row, data, exc, None, row.attempts + 1))
                    continue
                if external_id is not None and not known:
                    # a field emptied since the target's last copy is written as a clear
                    base = bases.get(row.canonical_id)
                    for key in _cleared_in_target(sm, base, target):
                        target[key] = None
                target_hash = rules.content_hash(target)
            if external_id is not None and last_hash == target_hash:
                written[row.canonical_id] = dict(
                    external_id=external_id,
                    written_hash=target_hash,
                    written_version=known["written_version"] if known else link.written_version,
                    synced_version=record.version,
                    entity=row.entity,
                )
                done_ids.append(row.id)
                report.skipped += 1
                continue
            stream = runtime.connector.stream(row.stream)
            try:
                self._rate_limit(runtime)
                with tracing.trace_context(row.trace_id):
                    if record.deleted:
                        assert external_id is not None
                        result = runtime.connector.delete(
                            stream, external_id, idempotency_key=row.idempotency_key
                        )
                    else:
                        result = runtime.connector.write(
                            stream,
                            target,
                            external_id=external_id,
                            idempotency_key=row.idempotency_key,
                        )
            except TransientError as exc:
                attempts = row.attempts + 1
                metrics.RETRIES.labels(name).inc()
                if attempts >= runtime.settings.max_attempts:
                    dead.append((row, target, exc, _response_of(exc), attempts))
                    continue
                delay = rules.backoff_delay(
                    attempts,
                    base_s=runtime.settings.retry_base_s,
                    cap_s=runtime.settings.retry_cap_s,
                    retry_after=exc.retry_after,
                    max_retry_after_s=runtime.settings.max_retry_after_s,
                    rand=self.rand,
                )
                retries.append(
                    dict(
                        b_id=row.id,
                        b_attempts=attempts,
                        b_next=time.time() + delay,
                        b_error=exc.message[:2000],
                    )
                )
                report.retried += 1
                continue
            except SpojkaError as exc:
                dead.append((row, target, exc, _response_of(exc), row.attempts + 1))
                continue
            except Exception as exc:  # a connector bug must not block the stream
                wrapped = SpojkaError(f"{type(exc).__name__}: {exc}")
                dead.append((row, target, wrapped, None, row.attempts + 1))
                continue
            written[row.canonical_id] = dict(
                external_id=result.external_id,
                written_hash=target_hash,
                written_version=result.version,
                synced_version=record.version,
                entity=row.entity,
            )
            done_ids.append(row.id)
            report.delivered += 1
            metrics.DELIVERIES.labels(name, "delivered").inc()
        runtime.connector.flush()
        self._record_outcomes(runtime, links, written, done_ids, retries, dead, held_ids)
        report.dead_lettered += len(dead)

    def _synced_data(
        self, conn: DbConnection, records: Mapping[str, Any], links: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Canonical data as each target link last received it (for clears), by id."""
        wanted = [
            (cid, link.synced_version)
            for cid, link in links.items()
            if link.synced_version
            and cid in records
            and link.synced_version < records[cid].version
            and not records[cid].deleted
        ]
        found: dict[str, dict[str, Any]] = {}
        for part in chunks(wanted, 400):
            for row in conn.execute(
                sa.select(VERSION.c.canonical_id, VERSION.c.data).where(
                    sa.tuple_(VERSION.c.canonical_id, VERSION.c.version).in_(list(part))
                )
            ):
                found[row.canonical_id] = json.loads(row.data)
        return found

    def _record_outcomes(
        self,
        runtime: ConnectionRuntime,
        links: Mapping[str, Any],
        written: Mapping[str, dict[str, Any]],
        done_ids: list[int],
        retries: list[dict[str, Any]],
        dead: list[tuple[Any, Any, SpojkaError, str | None, int]],
        held_ids: list[int],
    ) -> None:
        now = utcnow()
        name = runtime.name
        with self.db.begin() as conn:
            for cid, values in written.items():
                link = links.get(cid)
                if link is not None and (
                    link.external_id == values["external_id"] or link.written_hash == DELETED_HASH
                ):
                    conn.execute(
                        LINK.update()
                        .where(LINK.c.id == link.id)
                        .values(
                            external_id=values["external_id"],
                            written_version=values["written_version"],
                            written_hash=values["written_hash"],
                            synced_version=values["synced_version"],
                            updated_at=now,
                        )
                    )
                    continue
                conn.execute(
                    LINK.insert().values(
                        system=name,
                        entity=values["entity"],
                        external_id=values["external_id"],
                        canonical_id=cid,
                        written_version=values["written_version"],
                        written_hash=values["written_hash"],
                        synced_version=values["synced_version"],
                        updated_at=now,
                    )
                )
            for part in chunks(done_ids):
                conn.execute(
                    DELIVERY.update()
                    .where(DELIVERY.c.id.in_(part))
                    .values(status="done", updated_at=now)
                )
            for part in chunks(held_ids):
                conn.execute(
                    DELIVERY.update()
                    .where(DELIVERY.c.id.in_(part))
                    .values(status="held", updated_at=now)
                )
            if retries:
                conn.execute(
                    DELIVERY.update()
                    .where(DELIVERY.c.id == sa.bindparam("b_id"))
                    .values(
                        attempts=sa.bindparam("b_attempts"),
                        next_attempt_at=sa.bindparam("b_next"),
                        last_error=sa.bindparam("b_error"),
                        updated_at=now,
                    ),
                    retries,
                )
            for row, payload, exc, response, attempts in dead:
                link = links.get(row.canonical_id)
                conn.execute(
                    DLQ.insert().values(
                        connection=name,
                        stream=row.stream,
                        entity=row.entity,
                        direction="outbound",
                        # the record's id in the target, when it has one there
                        external_id=link.external_id if link is not None else None,
                        canonical_id=row.canonical_id,
                        delivery_id=row.id,
                        idempotency_key=row.idempotency_key,
                        payload=_dumps(payload),
                        response=response,
                        error=exc.message[:4000],
                        error_class=type(exc).__name__,
                        mapping_version=runtime.mapping_label,
                        attempts=attempts,
                        trace_id=row.trace_id,
                        status="open",
                        created_at=now,
                        updated_at=now,
                    )
                )
                conn.execute(
                    DELIVERY.update()
                    .where(DELIVERY.c.id == row.id)
                    .values(
                        status="dead",
                        attempts=attempts,
                        last_error=exc.message[:2000],
                        updated_at=now,
                    )
                )
                metrics.ERRORS.labels(name, row.stream, "delivery").inc()
                metrics.DELIVERIES.labels(name, "dead_lettered").inc()
                log.warning(
                    "sync.dead_letter",
                    connection=name,
                    stream=row.stream,
                    error_class=type(exc).__name__,
                )

    def _rate_limit(self, runtime: ConnectionRuntime) -> None:
        """Token bucket in the database: every worker on every host shares one budget."""
        rate = runtime.settings.rate_per_s
        if not rate:
            return
        burst = max(1.0, runtime.settings.burst)
        while True:
            with self.db.begin() as conn:
                row = conn.execute(
                    sa.select(BUCKET).where(BUCKET.c.connection == runtime.name)
                ).first()
                now = time.time()
                if row is None:
                    conn.execute(
                        insert_ignore(conn, BUCKET).values(
                            connection=runtime.name, tokens=burst - 1, updated_at=now
                        )
                    )
                    return
                granted, tokens, wait = rules.take_token(
                    tokens=row.tokens,
                    updated_at=row.updated_at,
                    now=now,
                    rate_per_s=rate,
                    burst=burst,
                )
                if granted:
                    # compare-and-set: a worker that read the same bucket state loses and
                    # tries again, so two workers never spend one token twice
                    taken = conn.execute(
                        BUCKET.update()
                        .where(
                            BUCKET.c.connection == runtime.name,
                            BUCKET.c.updated_at == row.updated_at,
                            BUCKET.c.tokens == row.tokens,
                        )
                        .values(tokens=tokens, updated_at=now)
                    )
                    if taken.rowcount == 1:
                        return
                    continue
            time.sleep(wait)

    def _remember(self, report: DeliveryReport) -> None:
        """Sum delivery reports of one run per target (pages deliver as they go)."""
        total = self._delivered.setdefault(report.connection, DeliveryReport(report.connection))
        total.delivered += report.delivered
        total.skipped += report.skipped
        total.retried += report.retried
        total.dead_lettered += report.dead_lettered

    def _refresh_gauges(self, name: str) -> None:
        with self.db.connect() as conn:
            depth = (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(DLQ)
                    .where(DLQ.c.connection == name, DLQ.c.status == "open")
                ).scalar()
                or 0
            )
        metrics.DLQ_DEPTH.labels(name).set(depth)

    # -- one full run -----------------------------------------------------------------------
    def run(self, name: str, *, streams: Sequence[str] | None = None) -> dict[str, Any]:
        """Poll a connection's streams and deliver the changes to every subscriber."""
        with tracing.trace_context(tracing.new_trace_id()):
            reports = self.poll(name, streams=streams, deliver_each_page=True)
            targets: set[str] = set()
            runtime = self.runtime(name)
            for sm in runtime.mapping.streams.values() if runtime.mapping else []:
                targets |= {c for c, _ in self.subscribers(sm.entity)} - {name}
            for target in sorted(targets):
                self._remember(self.deliver(target))
            deliveries = list(self._delivered.values())
            self._delivered = {}
            # the source itself may have pending writes (e.g. resolved conflicts)
            own = (
                self.deliver(name)
                if runtime.mapping
                and any(s.direction != "in" for s in runtime.mapping.streams.values())
                else None
            )
        return {
            "streams": reports,
            "deliveries": deliveries + ([own] if own else []),
        }


def _cleared_in_target(
    sm: StreamMapping, base: Mapping[str, Any] | None, target: Mapping[str, Any]
) -> list[str]:
    """Target fields the target's last copy had and the current record has emptied."""
    if base is None:
        return []
    try:
        before = sm.to_target(base)
    except RecordError:
        return []
    return [k for k, v in before.items() if v not in (None, "") and k not in target]


def _response_of(exc: SpojkaError) -> str | None:
    if not exc.detail:
        return None
    return _dumps(exc.detail)[:4000]
