"""Stored records, incremental matching, golden records, merge / split / undo, review queue.

Runs on SQLite and PostgreSQL (``db_url``), with the audit chain of governance.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core.db import make_engine, session_factory, transaction, upgrade
from spojka.core.errors import ConflictError
from spojka.governance import audit
from spojka.governance.models import AuditEntry
from spojka.quality import service
from spojka.quality.models import QualityCluster, QualityRecord

CRM_ACME = {
    "name": "ACME s.r.o.",
    "ico": "25596641",
    "email": "info@acme.cz",
    "phone": "601 123 456",
    "street": "Vinohradská 1511/230",
    "city": "Praha",
    "zip": "120 00",
}
ERP_ACME = {
    "name": "Acme, spol. s r.o.",
    "ico": "25596641",
    "dic": "CZ25596641",
    "street": "Vinohradská 1511/230",
    "city": "Praha",
    "zip": "12000",
    "email": "fakturace@acme.cz",
}
PM_ACME = {
    "name": "ACME sro",
    "ico": "25596642",
    "city": "Praha",
    "zip": "120 00",
    "street": "Vinohradska 1511/230",
}
OMEGA = {"name": "Omega Tatry a.s.", "ico": "27082440", "city": "Poprad", "zip": "058 01"}


@pytest.fixture
def session(db_url: str) -> Any:
    upgrade(db_url)
    engine = make_engine(db_url)
    factory = session_factory(engine)
    yield factory
    engine.dispose()


def _state(db: Session) -> dict[str, Any]:
    records = db.scalars(sa.select(QualityRecord).order_by(QualityRecord.id))
    clusters = db.scalars(sa.select(QualityCluster).where(QualityCluster.status == "active"))
    return {
        "membership": {r.external_id: r.cluster_id for r in records},
        "golden": {c.id: c.golden for c in clusters},
    }


def _ingest(
    factory: Any, system: str, external_id: str, values: dict[str, str], day: int = 1
) -> service.IngestOutcome:
    with transaction(factory) as db:
        return service.ingest(
            db_session=db,
            entity="account",
            system=system,
            external_id=external_id,
            values=values,
            updated_at=datetime(2026, 1, day, tzinfo=UTC),
        )


def test_copies_from_three_systems_become_one_golden_record(session: Any) -> None:
    first = _ingest(session, "crm", "C-1", CRM_ACME)
    assert first.decision == "separate"
    second = _ingest(session, "erp", "E-7", ERP_ACME, day=2)
    assert second.decision == "merge"
    third = _ingest(session, "pm", "P-3", PM_ACME, day=3)  # typo'd IČO, no diacritics
    assert third.decision == "merge"
    other = _ingest(session, "crm", "C-2", OMEGA)
    assert other.decision == "separate"

    with transaction(session) as db:
        cluster = db.get(QualityCluster, first.cluster_id)
        assert cluster is not None
        members = {
            r.external_id
            for r in db.scalars(
                sa.select(QualityRecord).where(QualityRecord.cluster_id == cluster.id)
            )
        }
        assert members == {"C-1", "E-7", "P-3"}
        # owner system first: the name is the CRM's, the DIČ and address the ERP's
        assert cluster.golden["name"] == "ACME s.r.o."
        assert cluster.lineage["name"]["system"] == "crm"
        assert cluster.lineage["name"]["rule"] == "owner system"
        assert cluster.golden["dic"] == "CZ25596641"
        assert cluster.lineage["dic"]["system"] == "erp"
        # the PM's mistyped IČO never wins: it is invalid
        assert cluster.golden["ico"] == "25596641"
        pm = db.scalars(sa.select(QualityRecord).where(QualityRecord.external_id == "P-3")).one()
        assert any(p["code"] == "ico_checksum" for p in pm.problems)
        assert pm.score < 100


def test_merge_then_undo_restores_the_original_state(session: Any) -> None:
    _ingest(session, "crm", "C-1", CRM_ACME)
    _ingest(session, "crm", "C-2", OMEGA)
    with transaction(session) as db:
        original = _state(db)
        ids = list(original["golden"])
        event = service.merge_clusters(
            db_session=db, cluster_ids=ids, actor="jana.novakova", reason="same owner"
        )
        event_id = event.id
    with transaction(session) as db:
        merged = _state(db)
        assert len(set(merged["membership"].values())) == 1
        service.undo(db_session=db, event_id=event_id, actor="jana.novakova")
    with transaction(session) as db:
        assert _state(db) == original
        actions = [e.action for e in db.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq))]
        assert "quality.merge" in actions and "quality.undo" in actions
        assert audit.verify(db).ok
        with pytest.raises(ConflictError):
            service.undo(db_session=db, event_id=event_id, actor="jana.novakova")


def test_auto_merge_can_be_split_and_the_split_undone(session: Any) -> None:
    _ingest(session, "crm", "C-1", CRM_ACME)
    before_merge = None
    with transaction(session) as db:
        before_merge = _state(db)
    merged = _ingest(session, "erp", "E-7", ERP_ACME, day=2)
    assert merged.decision == "merge"
    with transaction(session) as db:
        after_merge = _state(db)
        event = service.split_records(
            db_session=db,
            record_ids=[merged.record.id],
            actor="petr.svoboda",
            reason="a different company",
        )
        split_id = event.id
    with transaction(session) as db:
        split = _state(db)
        assert split["membership"]["E-7"] != split["membership"]["C-1"]
        # the remaining cluster's golden record no longer carries the ERP's values
        assert split["golden"][split["membership"]["C-1"]].get("dic") is None
        assert before_merge["membership"]["C-1"] == split["membership"]["C-1"]
        service.undo(db_session=db, event_id=split_id, actor="petr.svoboda")
    with transaction(session) as db:
        assert _state(db) == after_merge


def test_review_queue_accept_and_reject(session: Any) -> None:
    base = {"name": "Stavby Novák s.r.o.", "city": "Brno", "zip": "602 00"}
    _ingest(session, "crm", "C-1", base)
    candidate = _ingest(session, "erp", "E-1", {**base, "name": "Stavby Nováček s.r.o."})
    assert candidate.decision == "review"
    with transaction(session) as db:
        queue = service.open_reviews(db_session=db, entity="account")
        assert len(queue) == 1
        review, left, right = queue[0]
        assert {left.external_id, right.external_id} == {"C-1", "E-1"}
        assert {f["field"] for f in review.explanation} >= {"name", "zip", "city"}
        service.decide_review(
            db_session=db, review_id=review.id, decision="accept", actor="jana.novakova"
        )
    with transaction(session) as db:
        state = _state(db)
        assert state["membership"]["C-1"] == state["membership"]["E-1"]
        assert service.open_reviews(db_session=db) == []
        with pytest.raises(ConflictError):
            service.decide_review(
                db_session=db, review_id=review.id, decision="reject", actor="jana.novakova"
            )


def test_a_changed_record_updates_its_golden_record(session: Any) -> None:
    first = _ingest(session, "crm", "C-1", CRM_ACME)
    again = _ingest(session, "crm", "C-1", {**CRM_ACME, "phone": "+420 602 000 111"}, day=5)
    assert again.decision == "updated"
    with transaction(session) as db:
        cluster = db.get(QualityCluster, first.cluster_id)
        assert cluster is not None
        assert cluster.golden["phone"] == "+420602000111"


def test_score_snapshots_give_a_trend(session: Any) -> None:
    _ingest(session, "crm", "C-1", CRM_ACME)
    _ingest(session, "pm", "P-3", PM_ACME)
    with transaction(session) as db:
        groups = service.snapshot_scores(db_session=db)
        assert groups[0].system == "pm"  # the worst system first
        history = service.score_history(db_session=db, entity="account")
        assert {h.system for h in history} == {"crm", "pm"}
