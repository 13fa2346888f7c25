"""Storing documents once, recognising duplicates, keeping corrected versions, learning hints."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core.errors import NotFoundError, ValidationError
from spojka.documents.checks import DuplicateInvoice, InvoiceCheckFailed, run_checks
from spojka.documents.models import (
    HEADER_FIELDS,
    DocumentVersion,
    Extraction,
    FieldInfo,
    Invoice,
    StoredDocument,
    SupplierHint,
)
from spojka.documents.reader import extract_file, read_layout, supplier_key
from spojka.documents.rules import Hint, learn_label

# Fields that stay the same on every invoice of one supplier: a correction is remembered as
# the value itself. For the rest a correction teaches the label the supplier prints.
SUPPLIER_CONSTANT_FIELDS = frozenset(
    {
        "currency",
        "iban",
        "supplier.name",
        "supplier.ico",
        "supplier.dic",
        "supplier.vat_id",
        "supplier.address",
    }
)
_DATE_FIELDS = {"issue_date", "tax_point_date", "due_date"}
_AMOUNT_FIELDS = {"total_without_vat", "total_vat", "total_with_vat", "amount_due"}


@dataclass
class AddResult:
    document: StoredDocument
    extraction: Extraction | None
    new_file: bool
    duplicate_of: StoredDocument | None = None
    failures: list[InvoiceCheckFailed] = field(default_factory=list)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def documents_dir(data_dir: Path) -> Path:
    return data_dir / "documents"


def hints_for(*, session: Session, key: str) -> list[Hint]:
    """The active (newest) hint per field for one supplier."""
    rows = session.scalars(
        sa.select(SupplierHint)
        .where(SupplierHint.supplier_key == key, SupplierHint.active.is_(True))
        .order_by(SupplierHint.field, SupplierHint.version.desc())
    )
    seen: dict[str, Hint] = {}
    for row in rows:
        seen.setdefault(row.field, Hint(row.field, row.kind, row.value, row.version))
    return list(seen.values())


def find_duplicate(
    *, session: Session, invoice: Invoice, exclude_id: int | None = None
) -> StoredDocument | None:
    """An earlier document with the same supplier, invoice number and total."""
    key = supplier_key(invoice)
    if not key or not invoice.number or invoice.total_with_vat is None:
        return None
    query = sa.select(StoredDocument).where(
        StoredDocument.supplier_key == key,
        StoredDocument.number == invoice.number,
        StoredDocument.total_with_vat == invoice.total_with_vat,
    )
    if exclude_id is not None:
        query = query.where(StoredDocument.id != exclude_id)
    return session.scalars(query.order_by(StoredDocument.id).limit(1)).first()


def check_invoice(
    *, session: Session | None, invoice: Invoice, exclude_id: int | None = None
) -> list[InvoiceCheckFailed]:
    """All checks, including the duplicate check when a database is at hand."""
    failures = run_checks(invoice)
    if session is not None:
        earlier = find_duplicate(session=session, invoice=invoice, exclude_id=exclude_id)
        if earlier is not None:
            failures.append(
                DuplicateInvoice(
                    f"invoice {invoice.number} from {supplier_key(invoice)} over "
                    f"{invoice.total_with_vat} was already received as document {earlier.id} "
                    f"({earlier.filename})",
                    field="number",
                )
            )
    return failures


def add_document(
    *,
    session: Session,
    data_dir: Path,
    path: Path,
    actor: str = "cli",
    filename: str | None = None,
) -> AddResult:
    """Store a file once by content hash, read it, and record its first version.

    The same bytes again return the stored document (new_file=False). Different bytes with the
    same supplier + number + total are stored but marked as a duplicate of the earlier one.
    """
    data = path.read_bytes()
    digest = content_hash(data)
    existing = session.scalars(
        sa.select(StoredDocument).where(StoredDocument.content_hash == digest)
    ).first()
    if existing is not None:
        original = (
            session.get(StoredDocument, existing.duplicate_of_id)
            if existing.duplicate_of_id
            else None
        )
        return AddResult(document=existing, extraction=None, new_file=False, duplicate_of=original)
    target = documents_dir(data_dir) / digest[:2] / f"{digest}{path.suffix.lower()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(path, target)
    extraction = extract_file(target, hints_for=lambda key: hints_for(session=session, key=key))
    extraction.file = filename or str(path)
    invoice = extraction.invoice
    duplicate = find_duplicate(session=session, invoice=invoice)
    doc = StoredDocument(
        content_hash=digest,
        filename=filename or path.name,
        stored_path=str(target),
        size_bytes=len(data),
        read_path=extraction.source,
        supplier_key=supplier_key(invoice),
        number=invoice.number,
        total_with_vat=invoice.total_with_vat,
        duplicate_of_id=duplicate.id if duplicate else None,
        status="duplicate" if duplicate else "received",
        current_version=1,
    )
    session.add(doc)
    session.flush()
    session.add(
        DocumentVersion(
            document_id=doc.id,
            version=1,
            invoice=extraction.to_output(),
            actor=actor,
            reason="read " + extraction.source,
        )
    )
    failures = check_invoice(session=session, invoice=invoice, exclude_id=doc.id)
    return AddResult(
        document=doc,
        extraction=extraction,
        new_file=True,
        duplicate_of=duplicate,
        failures=failures,
    )


def get_document(*, session: Session, document_id: int) -> StoredDocument:
    doc = session.get(StoredDocument, document_id)
    if doc is None:
        raise NotFoundError(f"document {document_id} not found")
    return doc


def versions(*, session: Session, document_id: int) -> list[DocumentVersion]:
    return list(
        session.scalars(
            sa.select(DocumentVersion)
            .where(DocumentVersion.document_id == document_id)
            .order_by(DocumentVersion.version)
        )
    )


def _typed(field_path: str, value: str) -> Any:
    if field_path in _DATE_FIELDS:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{field_path}: {value!r} is not an ISO date") from None
    if field_path in _AMOUNT_FIELDS:
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValidationError(f"{field_path}: {value!r} is not a number") from None
    return value


def parse_field_value(field_path: str, value: str) -> Any:
    """A header field's value from text (ISO dates, decimal amounts); ValidationError if not."""
    return _typed(field_path, value)


def invoice_from_output(output: dict[str, Any]) -> Invoice:
    keys = set(Invoice.model_fields) - {"fields"}
    inv = Invoice.model_validate({k: v for k, v in output.items() if k in keys})
    inv.fields = {k: FieldInfo.model_validate(v) for k, v in output.get("fields", {}).items()}
    return inv


def save_version(
    *, session: Session, document_id: int, invoice: Invoice, actor: str, reason: str | None
) -> DocumentVersion:
    """Keep ``invoice`` as the document's next version (no learning; see correct_document)."""
    doc = get_document(session=session, document_id=document_id)
    latest = versions(session=session, document_id=document_id)[-1]
    version = _next_version(
        session=session, doc=doc, latest=latest, invoice=invoice, actor=actor, reason=reason
    )
    session.flush()
    return version


def _next_version(
    *,
    session: Session,
    doc: StoredDocument,
    latest: DocumentVersion,
    invoice: Invoice,
    actor: str,
    reason: str | None,
) -> DocumentVersion:
    """``invoice`` over ``latest`` added as the next version; the document's columns follow."""
    output = dict(latest.invoice) | {
        k: v
        for k, v in Extraction(file=doc.filename, source="xml", invoice=invoice).to_output().items()
        if k not in ("file", "source", "format", "warnings")
    }
    version = DocumentVersion(
        document_id=doc.id, version=latest.version + 1, invoice=output, actor=actor, reason=reason
    )
    session.add(version)
    doc.current_version = version.version
    doc.number = invoice.number
    doc.total_with_vat = invoice.total_with_vat
    doc.supplier_key = supplier_key(invoice) or doc.supplier_key
    return version


def correct_document(
    *,
    session: Session,
    document_id: int,
    corrections: dict[str, str],
    actor: str,
    reason: str | None = None,
) -> tuple[DocumentVersion, list[SupplierHint]]:
    """A person fixes fields: a new version is kept, and each fix becomes a supplier hint so
    the next invoice from that supplier is read right."""
    unknown = [f for f in corrections if f not in HEADER_FIELDS]
    if unknown:
        raise ValidationError(f"cannot correct {', '.join(unknown)}: not an invoice header field")
    doc = get_document(session=session, document_id=document_id)
    latest = versions(session=session, document_id=document_id)[-1]
    output = dict(latest.invoice)
    invoice = invoice_from_output(output)
    for path, raw in corrections.items():
        invoice.set(path, _typed(path, raw), FieldInfo(source="person", confidence=1.0))
    version = _next_version(
        session=session, doc=doc, latest=latest, invoice=invoice, actor=actor, reason=reason
    )
    hints = _learn(session=session, doc=doc, invoice=invoice, corrections=corrections, actor=actor)
    _audit(session, actor=actor, doc=doc, before=output, after=version.invoice, reason=reason)
    session.flush()
    return version, hints


def _learn(
    *,
    session: Session,
    doc: StoredDocument,
    invoice: Invoice,
    corrections: dict[str, str],
    actor: str,
) -> list[SupplierHint]:
    key = doc.supplier_key
    if not key or doc.read_path == "xml":
        return []  # an XML states its fields; nothing to learn about the layout
    layout = None
    hints = []
    for path in corrections:
        if path in SUPPLIER_CONSTANT_FIELDS:
            kind, value = "value", str(invoice.get(path))
        else:
            if layout is None:
                layout = read_layout(Path(doc.stored_path))
            label = learn_label(layout, path, invoice.get(path)) if layout else None
            if label is None:
                continue
            kind, value = "label", label
        last = session.scalar(
            sa.select(sa.func.max(SupplierHint.version)).where(
                SupplierHint.supplier_key == key, SupplierHint.field == path
            )
        )
        session.execute(
            sa.update(SupplierHint)
            .where(SupplierHint.supplier_key == key, SupplierHint.field == path)
            .values(active=False)
        )
        hint = SupplierHint(
            supplier_key=key,
            field=path,
            version=(last or 0) + 1,
            kind=kind,
            value=value,
            active=True,
            actor=actor,
            document_id=doc.id,
        )
        session.add(hint)
        hints.append(hint)
    return hints


def _audit(
    session: Session,
    *,
    actor: str,
    doc: StoredDocument,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str | None,
) -> None:
    try:
        from spojka.governance import audit
    except ImportError:  # governance not installed in a slim build
        return
    changed = {k for k in after if after.get(k) != before.get(k) and k != "fields"}
    audit.record(
        session,
        actor=actor,
        action="document.correct",
        object_type="document",
        object_id=str(doc.id),
        before={k: before.get(k) for k in changed},
        after={k: after.get(k) for k in changed},
        reason=reason,
    )
