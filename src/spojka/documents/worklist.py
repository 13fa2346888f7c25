"""The exception worklist: documents whose AP run waits for a person, and releasing them.

A document lands here when a check failed or the order match was not clean. A person looks
at the fields (value, source, confidence), corrects what is wrong (``correct_document``, which
also teaches the supplier's hints) and releases it; the release is the approval of the
waiting ``ap-exception`` decision, so the run continues with the corrected version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core.errors import ConflictError
from spojka.documents.models import HEADER_FIELDS, StoredDocument
from spojka.documents.service import check_invoice, get_document, invoice_from_output, versions
from spojka.runtime.models import Decision

EXCEPTION_TOPIC = "ap-exception"


@dataclass(frozen=True)
class ExceptionItem:
    document_id: int
    filename: str
    number: str | None
    supplier: str | None
    total_with_vat: str | None
    currency: str | None
    status: str
    decision_id: int | None
    required_role: str | None
    waiting_since: datetime | None
    summary: str | None
    failed_checks: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "filename": self.filename,
            "number": self.number,
            "supplier": self.supplier,
            "total_with_vat": self.total_with_vat,
            "currency": self.currency,
            "status": self.status,
            "decision_id": self.decision_id,
            "required_role": self.required_role,
            "waiting_since": self.waiting_since.isoformat() if self.waiting_since else None,
            "summary": self.summary,
            "failed_checks": self.failed_checks,
        }


def _workflow_prefix(doc: StoredDocument) -> str:
    from spojka.documents.intake_flow import workflow_id

    return workflow_id(doc.content_hash)


def pending_exception(session: Session, doc: StoredDocument) -> Decision | None:
    """The undecided ``ap-exception`` request of the document's run (a retry run included)."""
    prefix = _workflow_prefix(doc)
    found: Decision | None = session.scalar(
        sa.select(Decision)
        .where(
            Decision.topic == EXCEPTION_TOPIC,
            Decision.decided_at.is_(None),
            sa.or_(Decision.workflow_id == prefix, Decision.workflow_id.like(prefix + ":%")),
        )
        .order_by(Decision.id.desc())
        .limit(1)
    )
    return found


def failed_checks(session: Session, document_id: int) -> list[dict[str, Any]]:
    """The checks the current version fails now (after corrections, what is still wrong)."""
    latest = versions(session=session, document_id=document_id)[-1]
    invoice = invoice_from_output(dict(latest.invoice))
    return [
        {"check": type(f).__name__, "code": f.code, "field": f.field, "message": f.message}
        for f in check_invoice(session=session, invoice=invoice, exclude_id=document_id)
    ]


def list_exceptions(session: Session) -> list[ExceptionItem]:
    """Documents waiting as exceptions, oldest first."""
    docs = session.scalars(
        sa.select(StoredDocument)
        .where(StoredDocument.status == "exception")
        .order_by(StoredDocument.received_at, StoredDocument.id)
    )
    items = []
    for doc in docs:
        latest = versions(session=session, document_id=doc.id)[-1].invoice
        request = pending_exception(session, doc)
        total = latest.get("total_with_vat")
        items.append(
            ExceptionItem(
                document_id=doc.id,
                filename=doc.filename,
                number=latest.get("number"),
                supplier=(latest.get("supplier") or {}).get("name"),
                total_with_vat=None if total is None else str(total),
                currency=latest.get("currency"),
                status=doc.status,
                decision_id=request.id if request else None,
                required_role=request.required_role if request else None,
                waiting_since=request.requested_at if request else None,
                summary=request.summary if request else None,
                failed_checks=failed_checks(session, doc.id),
            )
        )
    return items


def _value(output: dict[str, Any], path: str) -> Any:
    value: Any = output
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def document_view(session: Session, document_id: int) -> dict[str, Any]:
    """What a person needs to decide: each field with value, source and confidence, the failed
    checks, the waiting decision and the kept versions."""
    doc = get_document(session=session, document_id=document_id)
    kept = versions(session=session, document_id=document_id)
    output = dict(kept[-1].invoice)
    infos = output.get("fields") or {}
    request = pending_exception(session, doc)
    return {
        "id": doc.id,
        "filename": doc.filename,
        "content_hash": doc.content_hash,
        "status": doc.status,
        "read_path": doc.read_path,
        "duplicate_of": doc.duplicate_of_id,
        "current_version": doc.current_version,
        "fields": [
            {
                "field": path,
                "value": _value(output, path),
                "source": (infos.get(path) or {}).get("source"),
                "confidence": (infos.get(path) or {}).get("confidence"),
                "page": (infos.get(path) or {}).get("page"),
            }
            for path in HEADER_FIELDS
        ],
        "lines": output.get("lines") or [],
        "vat_breakdown": output.get("vat_breakdown") or [],
        "failed_checks": failed_checks(session, doc.id),
        "exception": None
        if request is None
        else {
            "decision_id": request.id,
            "required_role": request.required_role,
            "waiting_since": request.requested_at,
            "summary": request.summary,
        },
        "invoice": output,
        "versions": [
            {"version": v.version, "actor": v.actor, "reason": v.reason, "at": v.created_at}
            for v in kept
        ],
    }


def release(
    app: Any,
    *,
    document_id: int,
    actor: str,
    role: str,
    reason: str | None = None,
    minutes_spent: float | None = None,
) -> dict[str, Any]:
    """Release a document waiting as an exception: its run continues (audited decision)."""
    from spojka.runtime.flows import signal_decision

    with app.sessions() as session:
        doc = get_document(session=session, document_id=document_id)
        request = pending_exception(session, doc)
        if request is None:
            raise ConflictError(
                f"document {document_id} is not waiting as an exception (status {doc.status})"
            )
        decision_id = request.id
    signalled = signal_decision(
        decision_id=decision_id,
        decision="approve",
        actor=actor,
        role=role,
        reason=reason or "released from the exception worklist",
        minutes_spent=minutes_spent,
    )
    return {"document_id": document_id, **signalled}
