"""The canonical invoice read from a document, and the tables that keep documents and hints."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Mapped, mapped_column

from spojka.core.db import Base, utcnow

# Where a value came from; the order of trust is xml > text > ocr, "rule" marks a value derived
# by a rule (e.g. CZ DIČ = VAT id), "person" one a person typed or taught.
FieldSource = Literal["xml", "text", "ocr", "rule", "model", "person"]
ReadPath = Literal["xml", "text", "ocr"]

HEADER_FIELDS = (
    "number",
    "issue_date",
    "tax_point_date",
    "due_date",
    "currency",
    "variable_symbol",
    "iban",
    "supplier.name",
    "supplier.ico",
    "supplier.dic",
    "supplier.vat_id",
    "supplier.address",
    "customer.name",
    "customer.ico",
    "customer.dic",
    "customer.vat_id",
    "customer.address",
    "total_without_vat",
    "total_vat",
    "total_with_vat",
    "amount_due",
)


class FieldInfo(BaseModel):
    """How one field was found: source, confidence in [0, 1], page (1-based) and box in points."""

    source: FieldSource
    confidence: float = Field(ge=0.0, le=1.0)
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    hint_version: int | None = None


class Party(BaseModel):
    name: str | None = None
    ico: str | None = None
    dic: str | None = None
    vat_id: str | None = None
    address: str | None = None
    country: str | None = None


class InvoiceLine(BaseModel):
    description: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    vat_rate: Decimal | None = None
    total: Decimal | None = None


class VatBreakdown(BaseModel):
    rate: Decimal
    base: Decimal | None = None
    tax: Decimal | None = None


class Invoice(BaseModel):
    """The canonical supplier invoice; unknown values stay None, never invented."""

    number: str | None = None
    issue_date: date | None = None
    tax_point_date: date | None = None
    due_date: date | None = None
    currency: str | None = None
    variable_symbol: str | None = None
    iban: str | None = None
    supplier: Party = Field(default_factory=Party)
    customer: Party = Field(default_factory=Party)
    lines: list[InvoiceLine] = Field(default_factory=list)
    vat_breakdown: list[VatBreakdown] = Field(default_factory=list)
    total_without_vat: Decimal | None = None
    total_vat: Decimal | None = None
    total_with_vat: Decimal | None = None
    amount_due: Decimal | None = None
    fields: dict[str, FieldInfo] = Field(default_factory=dict)

    def get(self, path: str) -> Any:
        """Value at a dotted path such as ``supplier.ico``."""
        obj: Any = self
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    def set(self, path: str, value: Any, info: FieldInfo) -> None:
        parts = path.split(".")
        obj: Any = self
        for part in parts[:-1]:
            obj = getattr(obj, part)
        setattr(obj, parts[-1], value)
        self.fields[path] = info


class Extraction(BaseModel):
    """One file read: which path (xml/text/ocr), which XML format, the invoice, and warnings."""

    file: str
    source: ReadPath
    format: str | None = None
    pages: int | None = None
    invoice: Invoice
    warnings: list[str] = Field(default_factory=list)

    def to_output(self) -> dict[str, Any]:
        """The JSON shape of ``spojka documents extract --format json``."""
        inv = self.invoice
        out: dict[str, Any] = {"file": self.file, "source": self.source, "format": self.format}
        out |= _plain(inv.model_dump(exclude={"fields"}))
        out["fields"] = {
            k: {kk: vv for kk, vv in v.model_dump().items() if vv is not None}
            for k, v in sorted(inv.fields.items())
        }
        out["warnings"] = self.warnings
        return out


def _plain(value: Any) -> Any:
    """Decimals become JSON numbers, dates ISO strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- tables -------------------------------------------------------------------------------


class StoredDocument(Base):
    """A file received once (by content hash); duplicates by supplier+number+amount point back."""

    __tablename__ = "documents_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    filename: Mapped[str] = mapped_column(sa.String(500))
    stored_path: Mapped[str] = mapped_column(sa.String(1000))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    read_path: Mapped[str | None] = mapped_column(sa.String(8))
    supplier_key: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    number: Mapped[str | None] = mapped_column(sa.String(100))
    total_with_vat: Mapped[Decimal | None] = mapped_column(sa.Numeric(18, 2))
    duplicate_of_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("documents_document.id"), nullable=True
    )
    status: Mapped[str] = mapped_column(sa.String(20), default="received")
    current_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentVersion(Base):
    """Each reading or correction of a document is kept as a new version."""

    __tablename__ = "documents_version"
    __table_args__ = (sa.UniqueConstraint("document_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("documents_document.id"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    invoice: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    actor: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupplierHint(Base):
    """What a person taught about one supplier's documents; a new version replaces the old one."""

    __tablename__ = "documents_supplier_hint"
    __table_args__ = (sa.UniqueConstraint("supplier_key", "field", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_key: Mapped[str] = mapped_column(sa.String(40), index=True)
    field: Mapped[str] = mapped_column(sa.String(60))
    version: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(10))  # "label" or "value"
    value: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    document_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
