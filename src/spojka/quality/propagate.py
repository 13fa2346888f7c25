"""Propagate golden values back to the systems that own them, through the sync engine.

For every active cluster, each member record that the sync engine knows (a link
``(system, entity, external id) → canonical id``) is compared with the golden record:

* a field whose golden value differs from what the system holds (compared after
  normalisation, so formatting alone is no difference) is changed only when that system
  OWNS the field — the sync engine's ownership declaration first, the quality
  survivorship owner when sync declares none. The change becomes a new canonical version
  plus an outbox row for that system, so the sync engine's own delivery writes it (with its
  idempotency key, retries, DLQ, and echo suppression on the next poll). Nothing here
  writes to a system directly.
* a differing field the system does not own is reported as ``not owned: skipped``.
* two or more records of ONE system in one cluster are duplicates there: the extra ones are
  linked to the cluster (both external ids → one canonical id) and flagged for a person in
  ``quality_duplicate_link``. They are never deleted and never overwritten.

Propagating twice changes nothing the second time: the canonical record already holds the
golden value, and a link that exists is not recorded again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from spojka.core import tracing
from spojka.core.db import utcnow
from spojka.core.errors import TransientError, ValidationError
from spojka.governance import audit
from spojka.quality.models import QualityCluster, QualityDuplicateLink, QualityRecord
from spojka.quality.survivorship import DEFAULT_OWNERSHIP
from spojka.quality.validate import validate_record
from spojka.sync import rules
from spojka.sync.engine import DeliveryReport, SyncEngine
from spojka.sync.mapping import RecordError, StreamMapping, check_contract
from spojka.sync.store import (
    CONFLICT,
    CONNECTION,
    DELIVERY,
    LINK,
    OWNERSHIP,
    RECORD,
    VERSION,
    insert_ignore,
)

#: quality entity → the sync engine's canonical entity
SYNC_ENTITY = {"account": "Account", "contact": "Contact"}
SOURCE = "quality:propagate"

Status = Literal[
    "changed",
    "not owned: skipped",
    "not mapped: skipped",
    "no canonical field: skipped",
    "not linked: skipped",
    "duplicate: flagged, not corrected",
    "invalid: skipped",
    "open conflict: skipped",
]


@dataclass(frozen=True, slots=True)
class FieldOutcome:
    system: str
    external_id: str
    field: str
    current: Any
    golden: Any
    status: Status
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class DuplicateFlag:
    system: str
    external_id: str
    survivor_external_id: str
    cluster_id: str
    new: bool


@dataclass(slots=True)
class PropagationReport:
    entity: str
    outcomes: list[FieldOutcome] = field(default_factory=list)
    duplicates: list[DuplicateFlag] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "changed")

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


# --------------------------------------------------------------------------- pure rules


def owner_of(
    *, sync_owner: Callable[[str], str | None], entity: str, field_name: str
) -> str | None:
    """The sync engine's declared owner of a field, else the survivorship owner."""
    return sync_owner(field_name) or DEFAULT_OWNERSHIP.get(entity, {}).get(field_name)


def same_value(entity: str, field_name: str, left: Any, right: Any) -> bool:
    """Equal after the quality normalisers (``602 123 456`` equals ``+420602123456``)."""
    if left in (None, "") or right in (None, ""):
        return left in (None, "") and right in (None, "")
    a, b = str(left), str(right)
    if a == b:
        return True
    na = validate_record(entity, {field_name: a}).normalized.get(field_name, a)
    nb = validate_record(entity, {field_name: b}).normalized.get(field_name, b)
    return bool(na == nb)


def survivor_of(records: Sequence[QualityRecord]) -> QualityRecord:
    """The record of one system that stays the system's own: most recently updated, then
    the first stored. The others are flagged as its duplicates."""
    return max(
        records,
        key=lambda r: (
            r.source_updated_at.timestamp() if r.source_updated_at else float("-inf"),
            -r.id,
        ),
    )


def writes_field(sm: StreamMapping, canonical_field: str) -> bool:
    """True when the stream's outbound mapping carries this canonical field to the system."""
    probe = object()
    for getter in sm.outbound.values():
        try:
            if getter({canonical_field: probe}) is probe:
                return True
        except Exception:  # computed outbound fields may not accept a probe
            continue
    return False


# --------------------------------------------------------------------------- the run


def _write_stream(engine: SyncEngine, system: str, sync_entity: str) -> StreamMapping | None:
    runtime = engine.runtime(system)
    if runtime.mapping is None:
        return None
    candidates = [sm for sm in runtime.mapping.streams.values() if sm.entity == sync_entity]
    writable = [sm for sm in candidates if sm.outbound]
    return writable[0] if writable else None


def propagate(
    *,
    db: Engine,
    entity: str = "account",
    actor: str,
    engine: SyncEngine | None = None,
    deliver: bool = True,
) -> PropagationReport:
    """Queue golden values to their owning systems, flag in-system duplicates, deliver."""
    if entity not in SYNC_ENTITY:
        raise ValidationError(f"unknown entity {entity!r} (account or contact)")
    sync_entity = SYNC_ENTITY[entity]
    sync = engine or SyncEngine(db)
    # read ownership fresh: a long-lived engine caches it, and a stale owner would write
    with db.connect() as conn:
        owners = {(r.entity, r.field): r.owner for r in conn.execute(sa.select(OWNERSHIP))}
    policy = rules.OwnershipPolicy(owners=owners)
    report = PropagationReport(entity=entity)
    touched: set[str] = set()
    streams: dict[str, StreamMapping | None] = {}
    now = utcnow()
    with Session(db) as session, session.begin():
        conn = session.connection()
        clusters = session.scalars(
            sa.select(QualityCluster)
            .where(QualityCluster.entity == entity, QualityCluster.status == "active")
            .order_by(QualityCluster.id)
        ).all()
        for cluster in clusters:
            members = session.scalars(
                sa.select(QualityRecord)
                .where(QualityRecord.cluster_id == cluster.id)
                .order_by(QualityRecord.id)
            ).all()
            by_system: dict[str, list[QualityRecord]] = {}
            for member in members:
                by_system.setdefault(member.system, []).append(member)
            for system, records in sorted(by_system.items()):
                survivor = survivor_of(records)
                for record in records:
                    link = conn.execute(
                        sa.select(LINK.c.canonical_id).where(
                            LINK.c.system == system,
                            LINK.c.entity == sync_entity,
                            LINK.c.external_id == record.external_id,
                        )
                    ).first()
                    if record is not survivor:
                        report.duplicates.append(
                            _flag(session, cluster, record, survivor, link, actor, now)
                        )
                        continue
                    if system not in streams:
                        streams[system] = (
                            _write_stream(sync, system, sync_entity)
                            if system in _connections(conn)
                            else None
                        )
                    if link is None:
                        report.outcomes.append(
                            FieldOutcome(
                                system, record.external_id, "*", None, None, "not linked: skipped"
                            )
                        )
                        continue
                    if _correct(
                        conn,
                        session,
                        report,
                        cluster=cluster,
                        record=record,
                        canonical_id=link.canonical_id,
                        sm=streams[system],
                        sync_owner=lambda f: policy.owner_of(sync_entity, f),
                        actor=actor,
                        now=now,
                    ):
                        touched.add(system)
    if deliver:
        for system in sorted(touched):
            report.deliveries.append(sync.deliver(system))
    return report


def _connections(conn: Any) -> set[str]:
    return set(conn.execute(sa.select(CONNECTION.c.name)).scalars())


def _flag(
    session: Session,
    cluster: QualityCluster,
    record: QualityRecord,
    survivor: QualityRecord,
    link: Any,
    actor: str,
    now: Any,
) -> DuplicateFlag:
    """Link a duplicate to the cluster and flag it for a person (once; never a delete)."""
    existing = session.scalars(
        sa.select(QualityDuplicateLink).where(
            QualityDuplicateLink.entity == record.entity,
            QualityDuplicateLink.system == record.system,
            QualityDuplicateLink.external_id == record.external_id,
        )
    ).first()
    if existing is not None:
        changed = (existing.cluster_id, existing.survivor_external_id) != (
            cluster.id,
            survivor.external_id,
        )
        if changed:  # the clusters moved (merge, split, undo): follow them
            existing.cluster_id = cluster.id
            existing.survivor_external_id = survivor.external_id
        return DuplicateFlag(
            record.system, record.external_id, survivor.external_id, cluster.id, new=changed
        )
    session.add(
        QualityDuplicateLink(
            entity=record.entity,
            system=record.system,
            external_id=record.external_id,
            cluster_id=cluster.id,
            survivor_external_id=survivor.external_id,
            sync_canonical_id=link.canonical_id if link is not None else None,
            status="flagged",
            created_at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        action="quality.duplicate.flag",
        object_type="quality_cluster",
        object_id=cluster.id,
        after={
            "system": record.system,
            "external_ids": [survivor.external_id, record.external_id],
        },
        reason="two records of one system in one cluster; kept both, a person decides",
    )
    return DuplicateFlag(
        record.system, record.external_id, survivor.external_id, cluster.id, new=True
    )


def _correct(
    conn: Any,
    session: Session,
    report: PropagationReport,
    *,
    cluster: QualityCluster,
    record: QualityRecord,
    canonical_id: str,
    sm: StreamMapping | None,
    sync_owner: Callable[[str], str | None],
    actor: str,
    now: Any,
) -> bool:
    """Owned differing fields into a new canonical version queued to the owner only."""
    row = conn.execute(sa.select(RECORD).where(RECORD.c.canonical_id == canonical_id)).first()
    if row is None or row.deleted:
        return False
    data: dict[str, Any] = json.loads(row.data)
    system, ext = record.system, record.external_id
    known = sm.contract.model_fields if sm is not None else {}
    # a field a person is deciding in the sync conflict queue is theirs, not ours
    disputed = set(
        conn.execute(
            sa.select(CONFLICT.c.field).where(
                CONFLICT.c.canonical_id == canonical_id, CONFLICT.c.status == "open"
            )
        ).scalars()
    )
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in sorted((cluster.golden or {}).items()):
        current = data.get(name)
        if same_value(record.entity, name, current, value):
            continue
        owner = owner_of(sync_owner=sync_owner, entity=record.entity, field_name=name)
        status: Status
        if owner != system:
            status = "not owned: skipped"
        elif sm is None or name not in known:
            status = "no canonical field: skipped" if sm is not None else "not mapped: skipped"
        elif not writes_field(sm, name):
            status = "not mapped: skipped"
        elif name in disputed:
            status = "open conflict: skipped"
        else:
            status = "changed"
            changes[name] = (current, value)
        report.outcomes.append(FieldOutcome(system, ext, name, current, value, status, owner))
    if not changes or sm is None:
        return False
    for name, (_, value) in changes.items():
        data[name] = value
    try:
        text = check_contract(sm.contract, data).canonical_json()
    except RecordError:
        # the golden value does not fit the sync contract (e.g. a format the system rejects)
        mine = {(system, ext, name) for name in changes}
        report.outcomes[:] = [
            FieldOutcome(o.system, o.external_id, o.field, o.current, o.golden,
                         "invalid: skipped", o.owner)
            if (o.system, o.external_id, o.field) in mine
            else o
            for o in report.outcomes
        ]  # fmt: skip
        return False
    version = row.version + 1
    moved = conn.execute(
        RECORD.update()
        .where(RECORD.c.canonical_id == canonical_id, RECORD.c.version == row.version)
        .values(
            version=version,
            data=text,
            data_hash=rules.text_hash(text),
            source_system=SOURCE,
            updated_at=now,
        )
    )
    if moved.rowcount != 1:
        raise TransientError(f"record {canonical_id} changed while propagating; run again")
    conn.execute(
        VERSION.insert().values(
            canonical_id=canonical_id,
            version=version,
            data=text,
            source_system=SOURCE,
            mapping_version=row.mapping_version,
            changed_at=now,
        )
    )
    event = f"quality:{cluster.id}:{system}:{ext}:{version}"
    conn.execute(
        insert_ignore(conn, DELIVERY).values(
            connection=system,
            stream=sm.stream,
            entity=sm.entity,
            canonical_id=canonical_id,
            canonical_version=version,
            source_event=event[:400],
            idempotency_key=rules.idempotency_key(event, f"deliver:{system}:{sm.stream}"),
            status="pending",
            attempts=0,
            next_attempt_at=0.0,
            trace_id=tracing.current_trace_id(),
            created_at=now,
            updated_at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        action="quality.propagate",
        object_type=sm.entity,
        object_id=canonical_id,
        before={k: old for k, (old, _) in changes.items()},
        after={k: new for k, (_, new) in changes.items()},
        reason=f"golden record of cluster {cluster.id}, owned by {system}",
    )
    return True


def outcome_rows(report: PropagationReport) -> list[Mapping[str, Any]]:
    """Flat rows for printing or JSON."""
    return [
        {
            "system": o.system,
            "external_id": o.external_id,
            "field": o.field,
            "current": o.current,
            "golden": o.golden,
            "owner": o.owner,
            "status": o.status,
        }
        for o in report.outcomes
    ]
