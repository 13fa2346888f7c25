"""Service functions of the sync domain: connections, ownership, conflicts, DLQ, reconcile,
health. Keyword-only arguments; the CLI and the API router are thin layers over these."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from spojka.connectors import registry
from spojka.core import tracing
from spojka.core.db import utcnow
from spojka.core.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    SpojkaError,
    ValidationError,
)
from spojka.governance.secret_store import default_store, externalise_secrets
from spojka.sync import metrics, rules, schedule, webhooks
from spojka.sync.engine import SyncEngine, SyncSettings, _dumps
from spojka.sync.mapping import RecordError, check_contract, parse_mapping
from spojka.sync.models import ConflictRead, DeadLetterRead
from spojka.sync.store import (
    BUCKET,
    CONFLICT,
    CONNECTION,
    CURSOR,
    DELIVERY,
    DLQ,
    LINK,
    OWNERSHIP,
    POLL_STATE,
    RECORD,
    VERSION,
    WEBHOOK,
    chunks,
    lock_row_clause,
)

# -- connections and ownership ----------------------------------------------------------------


def save_connection(
    *,
    db: Engine,
    name: str,
    kind: str,
    config: dict[str, Any],
    settings: dict[str, Any] | None = None,
    mapping_yaml: str | None = None,
) -> None:
    """Create or replace a connection; the mapping is checked before it is stored."""
    registry.connector_class(kind)
    SyncSettings.from_dict(settings)
    if mapping_yaml is not None:
        parse_mapping(mapping_yaml, file=f"{name}.mapping")
    # Credentials given inline go to the encrypted store; the row keeps only references.
    store = default_store()
    with Session(db) as session:
        config = externalise_secrets(session, store, owner=f"connection/{name}", config=config)
        session.commit()
    now = utcnow()
    with db.begin() as conn:
        exists = conn.execute(sa.select(CONNECTION.c.name).where(CONNECTION.c.name == name)).first()
        values = dict(kind=kind, config=config, settings=settings or {}, updated_at=now)
        if mapping_yaml is not None:
            values["mapping_yaml"] = mapping_yaml
        if exists:
            conn.execute(CONNECTION.update().where(CONNECTION.c.name == name).values(**values))
        else:
            conn.execute(
                CONNECTION.insert().values(
                    name=name,
                    created_at=now,
                    mapping_yaml=mapping_yaml,
                    **{k: v for k, v in values.items() if k != "mapping_yaml"},
                )
            )


def update_connection_config(*, db: Engine, name: str, values: Mapping[str, Any]) -> None:
    """Set some settings of a stored connection (credentials go to the encrypted store)."""
    with db.connect() as conn:
        row = conn.execute(sa.select(CONNECTION).where(CONNECTION.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no connection {name!r}")
    with Session(db) as session:
        config = externalise_secrets(
            session,
            default_store(),
            owner=f"connection/{name}",
            config={**dict(row.config or {}), **values},
        )
        session.commit()
    with db.begin() as conn:
        conn.execute(
            CONNECTION.update()
            .where(CONNECTION.c.name == name)
            .values(config=config, updated_at=utcnow())
        )


def list_connections(*, db: Engine) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(CONNECTION).order_by(CONNECTION.c.name)).all()
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "settings": r.settings,
            "mapping": parse_mapping(r.mapping_yaml).label if r.mapping_yaml else None,
        }
        for r in rows
    ]


#: why dead letters and conflicts were closed when their connection was removed
CONNECTION_REMOVED = "connection removed"


def open_work(conn: DbConnection, name: str) -> dict[str, int]:
    """What a person should see before a connection goes: writes still waiting to be sent
    to it, its open dead letters, and open conflicts its data is part of."""
    return {
        "pending_deliveries": _count(
            conn, DELIVERY, DELIVERY.c.connection == name, DELIVERY.c.status == "pending"
        ),
        "open_dead_letters": _count(conn, DLQ, DLQ.c.connection == name, DLQ.c.status == "open"),
        "open_conflicts": _count(conn, CONFLICT, *_conflicts_of(name)),
    }


def _count(conn: DbConnection, table: sa.Table, *where: Any) -> int:
    counted = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))
    return int(counted.scalar() or 0)


def _conflicts_of(name: str) -> tuple[Any, ...]:
    return (
        CONFLICT.c.status == "open",
        sa.or_(CONFLICT.c.incoming_system == name, CONFLICT.c.current_source == name),
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def remove_connection(
    *,
    db: Engine,
    name: str,
    actor: str,
    force: bool = False,
    forget_links: bool = False,
    snapshot: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Remove a connection and everything Spojka keeps only to sync with it (cursors, poll
    state, its queued writes and unprocessed webhooks, its ownership declarations, the
    secrets stored for it); canonical records and their history stay. Links stay unless
    ``forget_links``, so adding it again under the same name duplicates nothing.

    Refused (``ConflictError``) while it has open work (see :func:`open_work`), unless
    ``force``: then its dead letters are discarded and its conflicts withdrawn, with the
    reason ``connection removed``. Audited in the same transaction, with counts only."""
    from spojka.governance.models import StoredSecret

    now = utcnow()
    removed: dict[str, int] = {}
    with db.begin() as conn:
        found = conn.execute(
            lock_row_clause(conn, sa.select(CONNECTION.c.name).where(CONNECTION.c.name == name))
        ).first()
        if found is None:
            raise NotFoundError(f"no connection {name!r}")
        work = open_work(conn, name)
        if any(work.values()) and not force:
            raise ConflictError(
                f"connection {name!r} has open work: "
                + ", ".join(
                    [
                        _plural(
                            work["pending_deliveries"], "pending delivery", "pending deliveries"
                        ),
                        _plural(work["open_dead_letters"], "open dead letter", "open dead letters"),
                        _plural(work["open_conflicts"], "open conflict", "open conflicts"),
                    ]
                )
                + f"; see `spojka dlq list --connection {name}` and `spojka conflicts list`, "
                "or remove it anyway with --force (API: force=true)",
                detail=dict(work),
            )

        def delete(table: sa.Table, *where: Any) -> int:
            return int(conn.execute(table.delete().where(*where)).rowcount or 0)

        dead_ids = list(
            conn.execute(
                sa.select(DLQ.c.id).where(DLQ.c.connection == name, DLQ.c.status == "open")
            ).scalars()
        )
        for part in chunks(dead_ids):
            _discard(conn, list(part), actor=actor, reason=CONNECTION_REMOVED)
        removed["dead_letters_discarded"] = len(dead_ids)
        removed["conflicts_withdrawn"] = int(
            conn.execute(
                CONFLICT.update()
                .where(*_conflicts_of(name))
                .values(
                    status="resolved",
                    resolution=_dumps({"withdrawn": CONNECTION_REMOVED, "connection": name}),
                    resolved_by=actor,
                    resolved_at=now,
                )
            ).rowcount
            or 0
        )
        removed["deliveries_cancelled"] = delete(
            DELIVERY, DELIVERY.c.connection == name, DELIVERY.c.status == "pending"
        )
        removed["webhooks_dropped"] = delete(
            WEBHOOK, WEBHOOK.c.connection == name, WEBHOOK.c.status.in_(("pending", "failed"))
        )
        removed["cursors"] = delete(CURSOR, CURSOR.c.connection == name)
        removed["poll_state"] = delete(POLL_STATE, POLL_STATE.c.connection == name)
        delete(BUCKET, BUCKET.c.connection == name)
        removed["ownership"] = delete(OWNERSHIP, OWNERSHIP.c.owner == name)
        if forget_links:
            removed["links_forgotten"] = delete(LINK, LINK.c.system == name)
        else:
            removed["links_kept"] = _count(conn, LINK, LINK.c.system == name)
        # Only what Spojka stored for this connection (``db:connection/<name>/…``); env: and
        # file: references are the operator's. A secret another connection refers to stays.
        stored = list(
            conn.execute(
                sa.select(StoredSecret.name).where(
                    StoredSecret.name.startswith(f"connection/{name}/", autoescape=True)
                )
            ).scalars()
        )
        in_use = {
            value[3:]
            for config in conn.execute(
                sa.select(CONNECTION.c.config).where(CONNECTION.c.name != name)
            ).scalars()
            for value in (config or {}).values()
            if isinstance(value, str) and value.startswith("db:")
        }
        doomed = [s for s in stored if s not in in_use]
        if doomed:
            conn.execute(sa.delete(StoredSecret).where(StoredSecret.name.in_(doomed)))
        removed["secrets_deleted"] = len(doomed)
        removed["secrets_kept_in_use"] = len(stored) - len(doomed)
        delete(CONNECTION, CONNECTION.c.name == name)
        _audit(
            conn,
            actor=actor,
            action="connection.delete",
            object_type="connection",
            object_id=name,
            before=dict(snapshot) if snapshot is not None else {"name": name},
            after={"removed": removed, "force": force, "forget_links": forget_links},
        )
    refresh_conflict_gauge(db=db)
    return removed


def set_owner(
    *, db: Engine, entity: str, owner: str, field: str = "*", on_violation: str = "conflict"
) -> None:
    """Declare the source of truth of an entity (field ``*``) or of one field."""
    if on_violation not in ("conflict", "reject"):
        raise ValidationError("on_violation must be conflict or reject")
    with db.begin() as conn:
        conn.execute(
            OWNERSHIP.delete().where(OWNERSHIP.c.entity == entity, OWNERSHIP.c.field == field)
        )
        conn.execute(
            OWNERSHIP.insert().values(
                entity=entity, field=field, owner=owner, on_violation=on_violation
            )
        )


def reset_cursor(*, db: Engine, connection: str, stream: str | None = None) -> int:
    """Forget checkpoints so the next run re-reads everything; content hashes make the
    unchanged records cheap, and links keep identities, so nothing is duplicated."""
    with db.begin() as conn:
        stmt = CURSOR.delete().where(CURSOR.c.connection == connection)
        if stream:
            stmt = stmt.where(CURSOR.c.stream == stream)
        return int(conn.execute(stmt).rowcount or 0)


# -- canonical records ------------------------------------------------------------------------


def get_record(*, db: Engine, canonical_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(sa.select(RECORD).where(RECORD.c.canonical_id == canonical_id)).first()
        if row is None:
            raise NotFoundError(f"no canonical record {canonical_id}")
        links = conn.execute(
            sa.select(LINK.c.system, LINK.c.external_id).where(LINK.c.canonical_id == canonical_id)
        ).all()
    return {
        "canonical_id": row.canonical_id,
        "entity": row.entity,
        "version": row.version,
        "data": json.loads(row.data),
        "mapping_version": row.mapping_version,
        "source_system": row.source_system,
        "deleted": row.deleted,
        "links": {system: ext for system, ext in links},
    }


def find_record(*, db: Engine, system: str, entity: str, external_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        cid = conn.execute(
            sa.select(LINK.c.canonical_id).where(
                LINK.c.system == system, LINK.c.entity == entity, LINK.c.external_id == external_id
            )
        ).scalar()
    if cid is None:
        raise NotFoundError(f"no {entity} {external_id!r} from {system}")
    return get_record(db=db, canonical_id=cid)


def history(*, db: Engine, canonical_id: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(VERSION)
            .where(VERSION.c.canonical_id == canonical_id)
            .order_by(VERSION.c.version)
        ).all()
    return [
        {
            "version": r.version,
            "data": json.loads(r.data),
            "source_system": r.source_system,
            "mapping_version": r.mapping_version,
            "changed_at": r.changed_at,
        }
        for r in rows
    ]


# -- conflicts --------------------------------------------------------------------------------


def _conflict_read(row: Any) -> ConflictRead:
    def load(text: str | None) -> Any:
        return None if text is None else json.loads(text)

    return ConflictRead(
        id=row.id,
        entity=row.entity,
        canonical_id=row.canonical_id,
        field=row.field,
        kind=row.kind,
        status=row.status,
        current_value=load(row.current_value),
        current_source=row.current_source,
        current_at=row.current_at,
        incoming_value=load(row.incoming_value),
        incoming_system=row.incoming_system,
        incoming_at=row.incoming_at,
        resolution=load(row.resolution),
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )


def list_conflicts(
    *, db: Engine, status: str | None = "open", limit: int = 100
) -> list[ConflictRead]:
    stmt = sa.select(CONFLICT).order_by(CONFLICT.c.id).limit(limit)
    if status:
        stmt = stmt.where(CONFLICT.c.status == status)
    with db.connect() as conn:
        return [_conflict_read(r) for r in conn.execute(stmt)]


def get_conflict(*, db: Engine, conflict_id: int) -> ConflictRead:
    with db.connect() as conn:
        row = conn.execute(sa.select(CONFLICT).where(CONFLICT.c.id == conflict_id)).first()
    if row is None:
        raise NotFoundError(f"no conflict {conflict_id}")
    return _conflict_read(row)


def _audit(conn: DbConnection, **kwargs: Any) -> None:
    """Append to the governance audit chain when it is installed (it joins our transaction)."""
    try:
        from spojka.governance import audit
    except ImportError:  # governance not wired yet: the conflict row keeps who/when/what
        return
    from sqlalchemy.orm import Session

    with Session(bind=conn) as session:
        audit.record(session, **kwargs)
        session.flush()


def resolve_conflict(
    *,
    db: Engine,
    engine: SyncEngine | None = None,
    conflict_id: int,
    pick: str | None = None,
    value: Any = None,
    actor: str,
    reason: str | None = None,
) -> ConflictRead:
    """Pick ``current`` or ``incoming``, or enter a ``value``; store a new version, audit it,
    and queue writes so every linked system converges on the decision."""
    if (pick is None) == (value is None):
        raise ValidationError("give exactly one of pick (current/incoming) or value")
    if pick is not None and pick not in ("current", "incoming"):
        raise ValidationError("pick must be current or incoming")
    sync = engine or SyncEngine(db)
    now = utcnow()
    if _conflict_kind(db, conflict_id) == "delete":
        return _resolve_delete(
            db=db, sync=sync, conflict_id=conflict_id, pick=pick, actor=actor, reason=reason
        )
    with db.begin() as conn:
        row = conn.execute(sa.select(CONFLICT).where(CONFLICT.c.id == conflict_id)).first()
        if row is None:
            raise NotFoundError(f"no conflict {conflict_id}")
        if row.status != "open":
            raise ConflictError(f"conflict {conflict_id} is already {row.status}")
        if pick == "current":
            chosen = json.loads(row.current_value) if row.current_value else None
        elif pick == "incoming":
            chosen = json.loads(row.incoming_value) if row.incoming_value else None
        else:
            chosen = value
        record = conn.execute(
            sa.select(RECORD).where(RECORD.c.canonical_id == row.canonical_id)
        ).first()
        if record is None:
            raise NotFoundError(f"record {row.canonical_id} is gone")
        data = json.loads(record.data)
        before = data.get(row.field)
        data[row.field] = chosen
        from spojka.model.entities import entity_class

        try:
            checked = check_contract(entity_class(row.entity), data)
        except RecordError as exc:
            raise ValidationError(exc.message, detail=exc.detail) from None
        version = record.version + 1
        text = checked.canonical_json()
        source = f"resolution:{actor}"
        conn.execute(
            RECORD.update()
            .where(RECORD.c.canonical_id == row.canonical_id)
            .values(
                version=version,
                data=text,
                data_hash=rules.text_hash(text),
                source_system=source,
                updated_at=now,
            )
        )
        conn.execute(
            VERSION.insert().values(
                canonical_id=row.canonical_id,
                version=version,
                data=text,
                source_system=source,
                mapping_version=record.mapping_version,
                changed_at=now,
            )
        )
        resolution = {"pick": pick, "value": chosen, "reason": reason, "version": version}
        conn.execute(
            CONFLICT.update()
            .where(CONFLICT.c.id == conflict_id)
            .values(
                status="resolved", resolution=_dumps(resolution), resolved_by=actor, resolved_at=now
            )
        )
        sync._enqueue(
            conn,
            row.entity,
            [(row.canonical_id, version, f"conflict:{conflict_id}")],
            exclude=None,
            now=now,
        )
        _audit(
            conn,
            actor=actor,
            action="sync.conflict.resolve",
            object_type=row.entity,
            object_id=row.canonical_id,
            before={row.field: before},
            after={row.field: chosen},
            reason=reason,
        )
    refresh_conflict_gauge(db=db)
    return get_conflict(db=db, conflict_id=conflict_id)


def _conflict_kind(db: Engine, conflict_id: int) -> str | None:
    with db.connect() as conn:
        kind: str | None = conn.execute(
            sa.select(CONFLICT.c.kind).where(CONFLICT.c.id == conflict_id)
        ).scalar()
    return kind


def _resolve_delete(
    *,
    db: Engine,
    sync: SyncEngine,
    conflict_id: int,
    pick: str | None,
    actor: str,
    reason: str | None,
) -> ConflictRead:
    """A record deleted in its owning system, still held by a target: ``incoming`` deletes
    it there too (with an idempotency key), ``current`` keeps it there."""
    if pick is None:
        raise ValidationError("a delete is decided with pick: incoming (delete) or current (keep)")
    now = utcnow()
    with db.begin() as conn:
        row = conn.execute(sa.select(CONFLICT).where(CONFLICT.c.id == conflict_id)).first()
        if row is None:
            raise NotFoundError(f"no conflict {conflict_id}")
        if row.status != "open":
            raise ConflictError(f"conflict {conflict_id} is already {row.status}")
        target = str(row.current_source)
        record = conn.execute(
            sa.select(RECORD.c.version, RECORD.c.deleted).where(
                RECORD.c.canonical_id == row.canonical_id
            )
        ).first()
        if record is None or not record.deleted:
            raise ConflictError(f"record {row.canonical_id} is no longer deleted")
        if pick == "incoming":
            streams = [sm.stream for c, sm in sync.subscribers(row.entity) if c == target]
            if not streams or not all(sync.can_delete(target, s) for s in streams):
                raise ValidationError(
                    f"{target} cannot delete {row.entity} records through Spojka; remove it "
                    "there by hand and resolve with pick=current"
                )
            sync._enqueue(
                conn,
                row.entity,
                [(row.canonical_id, record.version, f"conflict:{conflict_id}:delete")],
                exclude=None,
                now=now,
                only=[target],
            )
        resolution = {"pick": pick, "delete_in": target if pick == "incoming" else None}
        conn.execute(
            CONFLICT.update()
            .where(CONFLICT.c.id == conflict_id)
            .values(
                status="resolved", resolution=_dumps(resolution), resolved_by=actor, resolved_at=now
            )
        )
        _audit(
            conn,
            actor=actor,
            action="sync.conflict.resolve",
            object_type=row.entity,
            object_id=row.canonical_id,
            before={"deleted_in": row.incoming_system, "held_by": target},
            after={"deleted_in": target} if pick == "incoming" else {"kept_in": target},
            reason=reason,
        )
    refresh_conflict_gauge(db=db)
    return get_conflict(db=db, conflict_id=conflict_id)


def refresh_conflict_gauge(*, db: Engine) -> None:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(CONFLICT.c.entity, sa.func.count())
            .where(CONFLICT.c.status == "open")
            .group_by(CONFLICT.c.entity)
        ).all()
    for entity, count in rows:
        metrics.CONFLICTS_OPEN.labels(entity).set(count)


# -- dead-letter queue ------------------------------------------------------------------------


def _dlq_read(row: Any) -> DeadLetterRead:
    payload: Any = row.payload
    if payload is not None:
        with contextlib.suppress(ValueError):
            payload = json.loads(payload)
    return DeadLetterRead(
        id=row.id,
        connection=row.connection,
        stream=row.stream,
        entity=row.entity,
        direction=row.direction,
        external_id=row.external_id,
        canonical_id=row.canonical_id,
        payload=payload,
        response=row.response,
        error=row.error,
        error_class=row.error_class,
        mapping_version=row.mapping_version,
        attempts=row.attempts,
        trace_id=row.trace_id,
        status=row.status,
        created_at=row.created_at,
    )


def list_dead_letters(
    *, db: Engine, connection: str | None = None, status: str | None = "open", limit: int = 100
) -> list[DeadLetterRead]:
    stmt = sa.select(DLQ).order_by(DLQ.c.id).limit(limit)
    if connection:
        stmt = stmt.where(DLQ.c.connection == connection)
    if status:
        stmt = stmt.where(DLQ.c.status == status)
    with db.connect() as conn:
        return [_dlq_read(r) for r in conn.execute(stmt)]


def get_dead_letter(*, db: Engine, item_id: int) -> DeadLetterRead:
    with db.connect() as conn:
        row = conn.execute(sa.select(DLQ).where(DLQ.c.id == item_id)).first()
    if row is None:
        raise NotFoundError(f"no dead-letter item {item_id}")
    return _dlq_read(row)


def replay_dead_letters(
    *,
    db: Engine,
    engine: SyncEngine | None = None,
    ids: list[int] | None = None,
    connection: str | None = None,
    actor: str = "cli",
) -> dict[str, int]:
    """Replay open items (by id, or all of a connection): writes go out again with their
    original idempotency key; inbound records run through the current mapping again."""
    sync = engine or SyncEngine(db)
    sync.reload()  # a fixed mapping must be used
    stmt = sa.select(DLQ).where(DLQ.c.status == "open").order_by(DLQ.c.id)
    if ids:
        stmt = stmt.where(DLQ.c.id.in_(ids))
    if connection:
        stmt = stmt.where(DLQ.c.connection == connection)
    with db.connect() as conn:
        items = conn.execute(stmt).all()
    if ids and len(items) != len(set(ids)):
        found = {i.id for i in items}
        missing = sorted(set(ids) - found)
        raise NotFoundError(f"no open dead-letter item(s) {missing}")
    targets: set[str] = set()
    counts = {"replayed": 0, "failed_again": 0}
    now = utcnow()
    for item in items:
        if item.direction == "outbound":
            with db.begin() as conn:
                conn.execute(
                    DELIVERY.update()
                    .where(DELIVERY.c.id == item.delivery_id)
                    .values(
                        status="pending", attempts=0, next_attempt_at=time.time(), updated_at=now
                    )
                )
                conn.execute(
                    DLQ.update()
                    .where(DLQ.c.id == item.id)
                    .values(status="replayed", updated_at=now)
                )
            targets.add(item.connection)
            continue
        runtime = sync.runtime(item.connection)
        sm = runtime.mapping.for_stream(item.stream or "") if runtime.mapping else None
        if sm is None:
            counts["failed_again"] += 1
            continue
        stream = runtime.connector.stream(sm.stream)
        record = json.loads(item.payload) if item.payload else {}
        if item.error_class == webhooks.FETCH_ERROR:  # an id-only webhook: fetch it again
            try:
                with tracing.trace_context(item.trace_id):
                    record = webhooks.fetch_record(runtime, sm.stream, str(item.external_id))
            except SpojkaError:
                counts["failed_again"] += 1
                continue
        with db.begin() as conn, tracing.trace_context(item.trace_id):
            stats, _ = sync.ingest(conn, runtime, sm, stream, [record], origin="replay")
            conn.execute(
                DLQ.update().where(DLQ.c.id == item.id).values(status="replayed", updated_at=now)
            )
        if stats.dead_lettered:
            counts["failed_again"] += 1
        else:
            counts["replayed"] += 1
        for target, _ in sync.subscribers(sm.entity):
            if target != item.connection:
                targets.add(target)
    for target in sorted(targets):
        report = sync.deliver(target)
        counts["replayed"] += report.delivered + report.skipped
        counts["failed_again"] += report.dead_lettered
    return counts


def discard_dead_letters(
    *, db: Engine, ids: list[int], actor: str = "cli", reason: str | None = None
) -> int:
    with db.begin() as conn:
        return _discard(conn, ids, actor=actor, reason=reason)


def _discard(conn: DbConnection, ids: list[int], *, actor: str, reason: str | None) -> int:
    """Discard open dead letters, each audited with the reason; how many were open."""
    result = conn.execute(
        DLQ.update()
        .where(DLQ.c.id.in_(ids), DLQ.c.status == "open")
        .values(status="discarded", updated_at=utcnow())
    )
    for item_id in ids:
        _audit(
            conn,
            actor=actor,
            action="sync.dlq.discard",
            object_type="dead_letter",
            object_id=str(item_id),
            reason=reason,
        )
    return int(result.rowcount or 0)


# -- reconciliation ---------------------------------------------------------------------------


def reconcile(
    *, db: Engine, engine: SyncEngine | None = None, connection: str, apply: bool = False
) -> list[dict[str, Any]]:
    """List ids on both sides per stream: deleted in the source, never synced, in step."""
    sync = engine or SyncEngine(db)
    runtime = sync.runtime(connection)
    if runtime.mapping is None:
        raise ValidationError(f"connection {connection!r} has no mapping")
    report = []
    for sm in runtime.mapping.streams.values():
        stream = runtime.connector.stream(sm.stream)
        remote = set(runtime.connector.list_ids(stream))
        with db.connect() as conn:
            local = {
                r.external_id: r.canonical_id
                for r in conn.execute(
                    sa.select(LINK.c.external_id, LINK.c.canonical_id).where(
                        LINK.c.system == connection, LINK.c.entity == sm.entity
                    )
                )
            }
        deleted = sorted(set(local) - remote)
        missing = sorted(remote - set(local))
        if apply and deleted:
            now = utcnow()
            with db.begin() as conn:
                for ext in deleted:
                    sync._mark_deleted(conn, connection, sm.entity, ext, now, runtime.mapping_label)
        report.append(
            {
                "entity": sm.entity,
                "stream": sm.stream,
                "remote": len(remote),
                "linked": len(local),
                "in_step": len(remote & set(local)),
                "deleted_in_source": len(deleted),
                "not_synced": len(missing),
                "deleted_ids": deleted[:20],
                "missing_ids": missing[:20],
            }
        )
    return report


# -- health -----------------------------------------------------------------------------------


def _age(at: datetime | None) -> float | None:
    if at is None:
        return None
    if at.tzinfo is None:
        from datetime import UTC

        at = at.replace(tzinfo=UTC)
    return max(0.0, (utcnow() - at).total_seconds())


def health(
    *, db: Engine, connection: str, engine: SyncEngine | None = None, check_system: bool = True
) -> dict[str, Any]:
    """Lag, records/s, errors, retries, DLQ depth and open conflicts of one connection."""
    sync = engine or SyncEngine(db)
    try:
        runtime = sync.runtime(connection)
        kind, mapping, broken = runtime.kind, runtime.mapping, None
    except (ConfigError, NotFoundError) as exc:
        # e.g. a secret reference that does not resolve in this process: the connection is
        # unhealthy, and its figures from the database are still worth showing
        with db.connect() as conn:
            row = conn.execute(
                sa.select(CONNECTION.c.kind, CONNECTION.c.mapping_yaml).where(
                    CONNECTION.c.name == connection
                )
            ).first()
        if row is None:
            raise
        kind, broken = row.kind, str(exc)
        mapping = (
            parse_mapping(row.mapping_yaml, file=f"{connection}.mapping")
            if row.mapping_yaml
            else None
        )
    with db.connect() as conn:
        cursors = conn.execute(sa.select(CURSOR).where(CURSOR.c.connection == connection)).all()
        dlq: dict[str, int] = dict(
            conn.execute(
                sa.select(DLQ.c.stream, sa.func.count())
                .where(DLQ.c.connection == connection, DLQ.c.status == "open")
                .group_by(DLQ.c.stream)
            ).all()
        )
        retries = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(DELIVERY.c.attempts), 0)).where(
                DELIVERY.c.connection == connection
            )
        ).scalar()
        pending = conn.execute(
            sa.select(sa.func.count())
            .select_from(DELIVERY)
            .where(DELIVERY.c.connection == connection, DELIVERY.c.status == "pending")
        ).scalar()
        entities = [sm.entity for sm in (mapping.streams.values() if mapping else [])]
        conflicts = conn.execute(
            sa.select(sa.func.count())
            .select_from(CONFLICT)
            .where(CONFLICT.c.status == "open", CONFLICT.c.entity.in_(entities or [""]))
        ).scalar()
        inbox = conn.execute(
            sa.select(sa.func.count())
            .select_from(WEBHOOK)
            .where(WEBHOOK.c.connection == connection, WEBHOOK.c.status == "pending")
        ).scalar()
    streams = []
    for c in cursors:
        lag = _age(c.last_change_at)
        rate = (
            c.last_run_records / c.last_run_seconds
            if c.last_run_records and c.last_run_seconds
            else 0.0
        )
        streams.append(
            {
                "stream": c.stream,
                "cursor": c.cursor_value,
                "lag_s": lag,
                "records_per_s": round(rate, 1),
                "records_total": c.records_total,
                "errors": int(dlq.get(c.stream, 0)),
                "in_progress": c.page_token is not None,
            }
        )
        if lag is not None:
            metrics.LAG.labels(connection, c.stream).set(lag)
    depth = int(sum(dlq.values()))
    metrics.DLQ_DEPTH.labels(connection).set(depth)
    system: dict[str, Any] = {}
    if broken is not None:
        system = {"ok": False, "detail": f"configuration: {broken}"}
    elif check_system:
        started = time.perf_counter()
        try:
            result = runtime.connector.health()
            system = {"ok": result.ok, "detail": result.detail}
        except Exception as exc:
            system = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        system["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    polling = next(iter(schedule.plans(db=db, names=[connection])), None)
    ok = bool(system.get("ok", True)) and depth == 0 and not (polling and polling.failures)
    return {
        "connection": connection,
        "kind": kind,
        "ok": ok,
        "system": system,
        "streams": streams,
        "dlq_depth": depth,
        "retries": int(retries or 0),
        "pending_deliveries": int(pending or 0),
        "conflicts_open": int(conflicts or 0),
        "webhooks_pending": int(inbox or 0),
        "mapping": mapping.label if mapping else None,
        "polling": polling.as_dict() if polling else None,
    }
