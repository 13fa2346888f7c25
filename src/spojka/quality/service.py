"""Quality service: store checked records, match them incrementally, merge / split / undo,
decide reviews, snapshot scores. Every merge and split is audited and reversible."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core.db import utcnow
from spojka.core.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    TransientError,
    ValidationError,
)
from spojka.governance import audit
from spojka.quality.ares import AresClient, AresCompany
from spojka.quality.clustering import MatchIndex
from spojka.quality.matching import DEFAULT_SETTINGS, Decision, MatchSettings
from spojka.quality.models import (
    QualityCluster,
    QualityMergeEvent,
    QualityRecord,
    QualityReview,
    QualityScoreSnapshot,
)
from spojka.quality.survivorship import SourceRecord, golden_record
from spojka.quality.validate import GroupScore, ScoredRecord, summarize, validate_record

MATCHER = "spojka:matcher"


@dataclass(slots=True)
class IngestOutcome:
    record: QualityRecord
    decision: Decision | Literal["updated"]
    cluster_id: str
    review_id: int | None = None


# --------------------------------------------------------------------------- helpers


def _source(record: QualityRecord) -> SourceRecord:
    values: dict[str, str | None] = {k: v for k, v in (record.values or {}).items()}
    values.update(record.normalized or {})
    invalid = frozenset(p["field"] for p in record.problems or [] if p["severity"] == "error")
    return SourceRecord(
        record_id=record.key,
        system=record.system,
        values=values,
        updated_at=record.source_updated_at,
        invalid_fields=invalid,
    )


def _members(db_session: Session, cluster_id: str) -> list[QualityRecord]:
    query = sa.select(QualityRecord).where(QualityRecord.cluster_id == cluster_id)
    return list(db_session.scalars(query.order_by(QualityRecord.id)))


def refresh_golden(*, db_session: Session, cluster: QualityCluster) -> None:
    """Recompute a cluster's golden record and lineage from its members."""
    members = _members(db_session, cluster.id)
    golden = golden_record(cluster.entity, [_source(m) for m in members])
    cluster.golden = dict(golden.values)
    cluster.lineage = {name: item.as_dict() for name, item in golden.lineage.items()}
    cluster.updated_at = utcnow()


def _new_cluster(db_session: Session, entity: str) -> QualityCluster:
    cluster = QualityCluster(
        id=uuid.uuid4().hex, entity=entity, status="active", golden={}, lineage={}
    )
    db_session.add(cluster)
    db_session.flush()
    return cluster


def _state(db_session: Session, cluster_ids: Iterable[str]) -> dict[str, Any]:
    """Who belongs where, and each cluster's status: enough to restore it exactly."""
    ids = sorted(set(cluster_ids))
    clusters = db_session.scalars(sa.select(QualityCluster).where(QualityCluster.id.in_(ids)))
    records = db_session.scalars(sa.select(QualityRecord).where(QualityRecord.cluster_id.in_(ids)))
    return {
        "members": {r.key: r.cluster_id for r in records},
        "clusters": {c.id: {"status": c.status, "merged_into": c.merged_into} for c in clusters},
    }


def _event(
    db_session: Session,
    *,
    entity: str,
    action: str,
    actor: str,
    reason: str | None,
    before: dict[str, Any],
    after: dict[str, Any],
    object_id: str,
    role: str | None = None,
) -> QualityMergeEvent:
    event = QualityMergeEvent(
        entity=entity, action=action, actor=actor, reason=reason, before=before, after=after
    )
    db_session.add(event)
    db_session.flush()
    audit.record(
        db_session,
        actor=actor,
        action=f"quality.{action}",
        object_type="quality_cluster",
        object_id=object_id,
        before=before,
        after={**after, "event_id": event.id},
        reason=reason,
        role=role,
    )
    return event


# --------------------------------------------------------------------------- records


def load_index(
    *, db_session: Session, entity: str, settings: MatchSettings = DEFAULT_SETTINGS
) -> MatchIndex:
    """The matching index of every stored record of ``entity``, in its stored clusters."""
    index = MatchIndex(entity, settings)
    query = (
        sa.select(QualityRecord)
        .where(QualityRecord.entity == entity, QualityRecord.cluster_id.is_not(None))
        .order_by(QualityRecord.id)
    )
    for record in db_session.scalars(query):
        index.insert(record.key, record.values or {}, str(record.cluster_id))
    return index


def ingest(
    *,
    db_session: Session,
    entity: str,
    system: str,
    external_id: str,
    values: Mapping[str, str | None],
    updated_at: datetime | None = None,
    index: MatchIndex | None = None,
    settings: MatchSettings = DEFAULT_SETTINGS,
) -> IngestOutcome:
    """Check a record from a system, store it and file it: auto-merge, review or alone.

    A new record is matched against the stored clusters through the blocking index; a
    changed record is re-checked and its cluster's golden record recomputed.
    """
    clean = {k: (None if v is None else str(v)) for k, v in values.items() if v not in (None, "")}
    quality = validate_record(entity, clean)
    problems = [
        {"code": p.code, "field": p.field, "severity": p.severity, "message": p.message}
        for p in quality.problems
    ]
    existing = db_session.scalars(
        sa.select(QualityRecord).where(
            QualityRecord.entity == entity,
            QualityRecord.system == system,
            QualityRecord.external_id == external_id,
        )
    ).first()
    if existing is not None:
        existing.values = clean
        existing.normalized = quality.normalized
        existing.problems = problems
        existing.score = quality.score
        existing.source_updated_at = updated_at or existing.source_updated_at
        db_session.flush()
        cluster = db_session.get(QualityCluster, existing.cluster_id)
        if cluster is not None:
            refresh_golden(db_session=db_session, cluster=cluster)
        return IngestOutcome(existing, "updated", str(existing.cluster_id))

    index = (
        index
        if index is not None
        else load_index(db_session=db_session, entity=entity, settings=settings)
    )
    record = QualityRecord(
        entity=entity,
        system=system,
        external_id=external_id,
        values=clean,
        normalized=quality.normalized,
        problems=problems,
        score=quality.score,
        source_updated_at=updated_at,
    )
    db_session.add(record)
    db_session.flush()
    outcome = index.match(record.key, clean)
    own = _new_cluster(db_session, entity)
    record.cluster_id = own.id
    db_session.flush()
    refresh_golden(db_session=db_session, cluster=own)
    if outcome.decision == "merge" and outcome.cluster_id is not None:
        index.insert(record.key, clean, outcome.cluster_id)
        merge_clusters(
            db_session=db_session,
            cluster_ids=[outcome.cluster_id, own.id],
            actor=MATCHER,
            reason=f"auto-merge, score {outcome.candidates[0].score.score:.1f}",
        )
        return IngestOutcome(record, "merge", outcome.cluster_id)
    index.insert(record.key, clean, own.id)
    if outcome.decision == "review" and outcome.candidates:
        best = outcome.candidates[0]
        review = QualityReview(
            entity=entity,
            left_record_id=int(best.record_id),
            right_record_id=record.id,
            score=best.score.score,
            explanation=[
                {
                    "field": f.field,
                    "level": f.level,
                    "weight": f.weight,
                    # the matcher compared (new, existing); the review shows (existing, new)
                    "left": f.right,
                    "right": f.left,
                }
                for f in best.score.fields
            ],
            status="open",
        )
        db_session.add(review)
        db_session.flush()
        return IngestOutcome(record, "review", own.id, review.id)
    return IngestOutcome(record, "separate", own.id)


# --------------------------------------------------------------------------- merge / split


def merge_clusters(
    *,
    db_session: Session,
    cluster_ids: list[str],
    actor: str,
    reason: str | None = None,
    role: str | None = None,
) -> QualityMergeEvent:
    """Merge clusters into the first one; the others are kept as ``merged`` for undo."""
    ids = list(dict.fromkeys(cluster_ids))
    if len(ids) < 2:
        raise ValidationError("a merge needs at least two different clusters")
    clusters = [db_session.get(QualityCluster, cid) for cid in ids]
    missing = [cid for cid, c in zip(ids, clusters, strict=True) if c is None]
    if missing:
        raise NotFoundError(f"cluster {missing[0]} does not exist")
    found = [c for c in clusters if c is not None]
    if len({c.entity for c in found}) != 1:
        raise ValidationError("clusters of different entities cannot be merged")
    if any(c.status != "active" for c in found):
        raise ConflictError("a cluster in the merge was already merged into another")
    target = found[0]
    before = _state(db_session, ids)
    for cluster in found[1:]:
        for member in _members(db_session, cluster.id):
            member.cluster_id = target.id
        cluster.status = "merged"
        cluster.merged_into = target.id
    db_session.flush()
    refresh_golden(db_session=db_session, cluster=target)
    return _event(
        db_session,
        entity=target.entity,
        action="merge",
        actor=actor,
        reason=reason,
        before=before,
        after=_state(db_session, ids),
        object_id=target.id,
        role=role,
    )


def split_records(
    *,
    db_session: Session,
    record_ids: list[int],
    actor: str,
    reason: str | None = None,
    role: str | None = None,
) -> QualityMergeEvent:
    """Take records out of their cluster into a new one (un-merge)."""
    records = [db_session.get(QualityRecord, rid) for rid in record_ids]
    if any(r is None for r in records):
        raise NotFoundError("a record to split does not exist")
    found = [r for r in records if r is not None]
    clusters = {r.cluster_id for r in found}
    if len(clusters) != 1 or None in clusters:
        raise ValidationError("records to split off must come from one cluster")
    source = db_session.get(QualityCluster, next(iter(clusters)))
    assert source is not None
    if len(_members(db_session, source.id)) == len(found):
        raise ValidationError("splitting off every record would leave an empty cluster")
    before = _state(db_session, [source.id])
    fresh = _new_cluster(db_session, source.entity)
    for record in found:
        record.cluster_id = fresh.id
    db_session.flush()
    refresh_golden(db_session=db_session, cluster=source)
    refresh_golden(db_session=db_session, cluster=fresh)
    return _event(
        db_session,
        entity=source.entity,
        action="split",
        actor=actor,
        reason=reason,
        before=before,
        after=_state(db_session, [source.id, fresh.id]),
        object_id=source.id,
        role=role,
    )


def undo(
    *,
    db_session: Session,
    event_id: int,
    actor: str,
    reason: str | None = None,
    role: str | None = None,
) -> QualityMergeEvent:
    """Reverse a merge or split exactly, if nothing changed those clusters since."""
    event = db_session.get(QualityMergeEvent, event_id)
    if event is None:
        raise NotFoundError(f"merge event {event_id} does not exist")
    if event.undone_by is not None:
        raise ConflictError(f"event {event_id} was already undone by event {event.undone_by}")
    touched = set(event.before["clusters"]) | set(event.after["clusters"])
    now = _state(db_session, touched)
    if now["members"] != event.after["members"]:
        raise ConflictError(
            f"clusters of event {event_id} changed since; undo the later events first"
        )
    for cluster_id, status in event.before["clusters"].items():
        cluster = db_session.get(QualityCluster, cluster_id)
        assert cluster is not None
        cluster.status, cluster.merged_into = status["status"], status["merged_into"]
    for cluster_id in set(event.after["clusters"]) - set(event.before["clusters"]):
        cluster = db_session.get(QualityCluster, cluster_id)
        assert cluster is not None
        cluster.status = "retired"
    for record_key, cluster_id in event.before["members"].items():
        record = db_session.get(QualityRecord, int(record_key))
        assert record is not None
        record.cluster_id = cluster_id
    db_session.flush()
    for cluster_id in touched:
        cluster = db_session.get(QualityCluster, cluster_id)
        assert cluster is not None
        refresh_golden(db_session=db_session, cluster=cluster)
    reverse = _event(
        db_session,
        entity=event.entity,
        action="undo",
        actor=actor,
        reason=reason or f"undo of {event.action} {event.id}",
        before=event.after,
        after=event.before,
        object_id=sorted(touched)[0],
        role=role,
    )
    event.undone_by = reverse.id
    return reverse


# --------------------------------------------------------------------------- review queue


def open_reviews(
    *, db_session: Session, entity: str | None = None, limit: int = 50
) -> list[tuple[QualityReview, QualityRecord, QualityRecord]]:
    query = sa.select(QualityReview).where(QualityReview.status == "open")
    if entity:
        query = query.where(QualityReview.entity == entity)
    out = []
    for review in db_session.scalars(query.order_by(QualityReview.score.desc()).limit(limit)):
        left = db_session.get(QualityRecord, review.left_record_id)
        right = db_session.get(QualityRecord, review.right_record_id)
        if left is not None and right is not None:
            out.append((review, left, right))
    return out


def decide_review(
    *,
    db_session: Session,
    review_id: int,
    decision: Literal["accept", "reject"],
    actor: str,
    reason: str | None = None,
    role: str | None = None,
) -> QualityMergeEvent | None:
    """Accept (merge the pair's clusters) or reject (keep them apart) a candidate pair."""
    review = db_session.get(QualityReview, review_id)
    if review is None:
        raise NotFoundError(f"review {review_id} does not exist")
    if review.status != "open":
        raise ConflictError(f"review {review_id} was already decided ({review.status})")
    review.status = "accepted" if decision == "accept" else "rejected"
    review.decided_by, review.decided_at, review.reason = actor, utcnow(), reason
    event: QualityMergeEvent | None = None
    if decision == "accept":
        left = db_session.get(QualityRecord, review.left_record_id)
        right = db_session.get(QualityRecord, review.right_record_id)
        assert left is not None and right is not None
        if left.cluster_id != right.cluster_id:
            event = merge_clusters(
                db_session=db_session,
                cluster_ids=[str(left.cluster_id), str(right.cluster_id)],
                actor=actor,
                reason=reason or f"review {review_id} accepted",
                role=role,
            )
    else:
        audit.record(
            db_session,
            actor=actor,
            action="quality.review.reject",
            object_type="quality_review",
            object_id=str(review_id),
            reason=reason,
            role=role,
        )
    return event


# --------------------------------------------------------------------------- scores


def scored_records(*, db_session: Session, entity: str | None = None) -> list[ScoredRecord]:
    from spojka.quality.validate import Problem

    query = sa.select(QualityRecord)
    if entity:
        query = query.where(QualityRecord.entity == entity)
    return [
        ScoredRecord(
            entity=r.entity,
            system=r.system,
            record_id=f"{r.system}:{r.external_id}",
            score=r.score,
            problems=tuple(
                Problem(p["code"], p["field"], p["severity"], p["message"])
                for p in r.problems or []
            ),
        )
        for r in db_session.scalars(query)
    ]


def snapshot_scores(*, db_session: Session) -> list[GroupScore]:
    """Store today's average score per entity and system (the trend `report` shows)."""
    groups = summarize(scored_records(db_session=db_session))
    at = utcnow()
    for group in groups:
        db_session.add(
            QualityScoreSnapshot(
                entity=group.entity,
                system=group.system,
                records=group.records,
                average=group.average,
                invalid=group.invalid,
                at=at,
            )
        )
    db_session.flush()
    return groups


def score_history(
    *, db_session: Session, entity: str | None = None, limit: int = 10
) -> list[QualityScoreSnapshot]:
    query = sa.select(QualityScoreSnapshot)
    if entity:
        query = query.where(QualityScoreSnapshot.entity == entity)
    rows = db_session.scalars(query.order_by(QualityScoreSnapshot.at.desc()).limit(limit * 20))
    return list(rows)


# --------------------------------------------------------------------------- enrichment


@dataclass(slots=True)
class AresOutcome:
    status: str  # filed | not_found | no_ico | unavailable
    company: AresCompany | None = None
    ingest: IngestOutcome | None = None


def enrich_from_ares(
    *,
    db_session: Session,
    record: QualityRecord,
    client: AresClient,
    index: MatchIndex | None = None,
) -> AresOutcome:
    """File what ARES says about a record's IČO as one more source of its cluster.

    ARES becomes a system like the others (``system="ares"``), so survivorship decides
    which values win and the lineage says a value came from the register. Never raises
    for ARES trouble: enrichment is optional.
    """
    ico = (record.normalized or {}).get("ico")
    if not ico or record.entity != "account":
        return AresOutcome("no_ico")
    try:
        company = client.lookup(str(ico))
    except (TransientError, PermanentError):
        return AresOutcome("unavailable")
    if company is None:
        return AresOutcome("not_found")
    values: dict[str, str | None] = dict(company.as_values())
    outcome = ingest(
        db_session=db_session,
        entity="account",
        system="ares",
        external_id=company.ico,
        values=values,
        updated_at=utcnow(),
        index=index,
    )
    if not company.active:
        outcome.record.problems = [
            *outcome.record.problems,
            {
                "code": "company_dissolved",
                "field": "ico",
                "severity": "warning",
                "message": f"ARES: the company {company.ico} was dissolved on {company.dissolved}",
            },
        ]
        outcome.record.score = max(0.0, outcome.record.score - 10)
    return AresOutcome("filed", company, outcome)
