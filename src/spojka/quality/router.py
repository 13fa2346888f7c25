"""API of quality: the review queue (candidate pairs with agreeing and disagreeing fields),
decisions, split and undo, golden records with lineage, and the score report."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from spojka.api.auth import APPROVE, OPERATE, READ, Principal, get_session, require
from spojka.core.errors import NotFoundError
from spojka.quality import service
from spojka.quality.models import QualityCluster, QualityRecord
from spojka.quality.validate import summarize, worst_first

router = APIRouter(prefix="/quality", tags=["quality"])


class Decision(BaseModel):
    decision: Literal["accept", "reject"]
    reason: str | None = None


class Reason(BaseModel):
    reason: str | None = None


def _record(record: QualityRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "system": record.system,
        "external_id": record.external_id,
        "values": record.values,
        "score": record.score,
        "problems": record.problems,
        "cluster_id": record.cluster_id,
    }


@router.get("/reviews")
def list_reviews(
    entity: str | None = None,
    limit: int = 50,
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Open candidate pairs, most likely first, each field marked agree / disagree."""
    out = []
    for review, left, right in service.open_reviews(
        db_session=session, entity=entity, limit=min(limit, 500)
    ):
        out.append(
            {
                "id": review.id,
                "entity": review.entity,
                "score": review.score,
                "left": _record(left),
                "right": _record(right),
                "agreeing": [f["field"] for f in review.explanation if f["weight"] > 0],
                "disagreeing": [f["field"] for f in review.explanation if f["weight"] < 0],
                "fields": review.explanation,
            }
        )
    return out


@router.post("/reviews/{review_id}/decision")
def decide(
    review_id: int,
    decision: Decision,
    principal: Principal = require(APPROVE),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    event = service.decide_review(
        db_session=session,
        review_id=review_id,
        decision=decision.decision,
        actor=principal.name,
        reason=decision.reason,
        role=principal.role.value,
    )
    return {"review_id": review_id, "decision": decision.decision, "event_id": event and event.id}


@router.post("/records/{record_id}/split")
def split(
    record_id: int,
    body: Reason,
    principal: Principal = require(APPROVE),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Take a record out of its cluster (un-merge)."""
    event = service.split_records(
        db_session=session,
        record_ids=[record_id],
        actor=principal.name,
        reason=body.reason,
        role=principal.role.value,
    )
    return {"event_id": event.id, "clusters": sorted(event.after["clusters"])}


@router.post("/events/{event_id}/undo")
def undo(
    event_id: int,
    body: Reason,
    principal: Principal = require(APPROVE),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    event = service.undo(
        db_session=session,
        event_id=event_id,
        actor=principal.name,
        reason=body.reason,
        role=principal.role.value,
    )
    return {"event_id": event.id, "undid": event_id}


@router.get("/clusters/{cluster_id}")
def golden(
    cluster_id: str,
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A golden record, the lineage of each field, and the member records."""
    cluster = session.get(QualityCluster, cluster_id)
    if cluster is None:
        raise NotFoundError(f"cluster {cluster_id} does not exist")
    members = service._members(session, cluster.id)
    return {
        "id": cluster.id,
        "entity": cluster.entity,
        "status": cluster.status,
        "merged_into": cluster.merged_into,
        "golden": cluster.golden,
        "lineage": cluster.lineage,
        "members": [_record(m) for m in members],
    }


@router.get("/report")
def report(
    entity: str | None = None,
    limit: int = 20,
    principal: Principal = require(READ),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Average score per entity and system (worst first) and the worst records."""
    records = service.scored_records(db_session=session, entity=entity)
    return {
        "groups": [_group(g) for g in summarize(records)],
        "worst": [
            {
                "entity": r.entity,
                "record": r.record_id,
                "score": r.score,
                "problems": [p.message for p in r.problems],
            }
            for r in worst_first(records, min(limit, 500))
        ],
    }


def _group(group: Any) -> dict[str, Any]:
    return {
        "entity": group.entity,
        "system": group.system,
        "records": group.records,
        "average": group.average,
        "invalid": group.invalid,
    }


class PropagateRequest(BaseModel):
    entity: Literal["account", "contact"] = "account"
    deliver: bool = True


@router.post("/propagate")
def propagate_golden(
    body: PropagateRequest,
    principal: Principal = require(OPERATE),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Golden values to their owning systems through the sync engine; duplicates flagged."""
    from sqlalchemy.engine import Engine

    from spojka.quality.propagate import outcome_rows, propagate

    bind = session.get_bind()
    db = bind if isinstance(bind, Engine) else bind.engine
    result = propagate(db=db, entity=body.entity, actor=principal.name, deliver=body.deliver)
    return {
        "entity": result.entity,
        "changed": result.changed,
        "outcomes": outcome_rows(result),
        "duplicates": [
            {
                "system": f.system,
                "external_id": f.external_id,
                "survivor_external_id": f.survivor_external_id,
                "cluster_id": f.cluster_id,
                "new": f.new,
            }
            for f in result.duplicates
        ],
        "deliveries": [
            {
                "connection": d.connection,
                "delivered": d.delivered,
                "skipped": d.skipped,
                "retried": d.retried,
                "dead_lettered": d.dead_lettered,
            }
            for d in result.deliveries
        ],
    }
