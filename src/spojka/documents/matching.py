"""2-way and 3-way matching of a supplier invoice against purchase orders (pure rules).

2-way: invoice ↔ purchase order (order reference, supplier IČO/DIČ, lines by product code or
description; quantity, unit price % and total amount within the supplier's tolerances).
3-way: additionally the invoiced quantity must not exceed what was received.
The result is ``matched`` / ``partial`` / ``unmatched`` with every differing line listed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from spojka.core.errors import ValidationError
from spojka.documents.models import Invoice, InvoiceLine


class MatchStatus(StrEnum):
    matched = "matched"
    partial = "partial"
    unmatched = "unmatched"


@dataclass(frozen=True)
class Tolerance:
    """How far an invoice may differ from its order and still count as matched."""

    quantity: Decimal = Decimal("0")  # absolute units per line
    price_pct: Decimal = Decimal("0")  # per-unit price, % of the ordered price
    total_amount: Decimal = Decimal("1")  # invoice total without VAT vs. ordered lines, Kč

    def __post_init__(self) -> None:
        for name in ("quantity", "price_pct", "total_amount"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                object.__setattr__(self, name, Decimal(str(value)))
            if getattr(self, name) < 0:
                raise ValidationError(f"tolerance {name} must not be negative (got {value})")


@dataclass(frozen=True)
class Tolerances:
    """The default tolerance, overridden per category and then per supplier (IČO)."""

    default: Tolerance = field(default_factory=Tolerance)
    by_category: Mapping[str, Tolerance] = field(default_factory=dict)
    by_supplier: Mapping[str, Tolerance] = field(default_factory=dict)

    def for_(self, *, supplier_ico: str | None, category: str | None = None) -> Tolerance:
        if supplier_ico and supplier_ico in self.by_supplier:
            return self.by_supplier[supplier_ico]
        if category and category in self.by_category:
            return self.by_category[category]
        return self.default

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Tolerances:
        """From configuration, e.g. ``{"default": {"price_pct": 2}, "suppliers": {...}}``."""

        def one(where: str, value: Any) -> Tolerance:
            if not isinstance(value, Mapping):
                raise ValidationError(f"tolerances.{where} must be a mapping")
            unknown = set(value) - {"quantity", "price_pct", "total_amount"}
            if unknown:
                raise ValidationError(
                    f"tolerances.{where}: unknown keys {sorted(unknown)} "
                    "(allowed: quantity, price_pct, total_amount)"
                )
            try:
                return Tolerance(**{k: Decimal(str(v)) for k, v in value.items()})
            except ArithmeticError:
                raise ValidationError(f"tolerances.{where}: values must be numbers") from None

        return cls(
            default=one("default", raw.get("default", {})),
            by_category={
                k: one(f"categories.{k}", v) for k, v in (raw.get("categories") or {}).items()
            },
            by_supplier={
                k: one(f"suppliers.{k}", v) for k, v in (raw.get("suppliers") or {}).items()
            },
        )


@dataclass(frozen=True)
class OrderLine:
    id: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    product_code: str | None = None
    # What the goods receipts delivered; None for lines without stock moves (services),
    # which the 3-way match then leaves to the 2-way rules.
    received_quantity: Decimal | None = None


@dataclass(frozen=True)
class PurchaseOrder:
    id: int
    number: str | None
    reference: str | None
    supplier_ico: str | None
    supplier_dic: str | None
    lines: Sequence[OrderLine]
    currency: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class LineDifference:
    """One line that does not agree; ``invoice_line``/``order_line`` are indexes / ids."""

    kind: str  # quantity | price | received | not_on_order | not_invoiced | total | supplier
    message: str
    invoice_line: int | None = None
    order_line: int | None = None
    invoiced: Decimal | None = None
    expected: Decimal | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "invoice_line": self.invoice_line,
            "order_line": self.order_line,
            "invoiced": None if self.invoiced is None else str(self.invoiced),
            "expected": None if self.expected is None else str(self.expected),
        }


@dataclass(frozen=True)
class MatchResult:
    status: MatchStatus
    order: PurchaseOrder | None
    differences: list[LineDifference]
    pairs: dict[int, int] = field(default_factory=dict)  # invoice line index → order line id
    three_way: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "order": None if self.order is None else self.order.id,
            "order_number": None if self.order is None else self.order.number,
            "three_way": self.three_way,
            "pairs": {str(k): v for k, v in self.pairs.items()},
            "differences": [d.as_dict() for d in self.differences],
        }


def _norm(text: str | None) -> str:
    plain = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", plain.lower()).strip()


def _digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


def same_supplier(invoice: Invoice, order: PurchaseOrder) -> bool:
    """IČO equal, or (when either side lacks it) the DIČ digits equal."""
    ico = _digits(invoice.supplier.ico)
    if ico and order.supplier_ico:
        return ico == _digits(order.supplier_ico)
    dic = _digits(invoice.supplier.dic or invoice.supplier.vat_id)
    return bool(dic) and dic == _digits(order.supplier_dic)


def find_order(
    invoice: Invoice, orders: Sequence[PurchaseOrder], *, order_reference: str | None = None
) -> PurchaseOrder | None:
    """The supplier's order the invoice refers to: by reference first, else the only one."""
    candidates = [o for o in orders if same_supplier(invoice, o)]
    refs = [_norm(r) for r in (order_reference, invoice.variable_symbol) if r]
    refs += [_norm(ln.description) for ln in invoice.lines if ln.description]
    for order in candidates:
        keys = [_norm(k) for k in (order.number, order.reference) if k]
        for key in keys:
            if any(key == r or re.search(rf"\b{re.escape(key)}\b", r) for r in refs):
                return order
    return candidates[0] if len(candidates) == 1 else None


def _pair(line: InvoiceLine, available: list[OrderLine]) -> OrderLine | None:
    text = _norm(line.description)
    for ol in available:  # product code named on the invoice line
        if ol.product_code and re.search(rf"\b{re.escape(_norm(ol.product_code))}\b", text):
            return ol
    for ol in available:
        if _norm(ol.description) == text:
            return ol
    for ol in available:
        desc = _norm(ol.description)
        if desc and text and (desc in text or text in desc):
            return ol
    return None


def _pct(invoiced: Decimal, expected: Decimal) -> Decimal:
    if expected == 0:
        return Decimal(0) if invoiced == 0 else Decimal(100)
    return abs(invoiced - expected) / abs(expected) * 100


def match(
    invoice: Invoice,
    order: PurchaseOrder | None,
    tolerance: Tolerance,
    *,
    three_way: bool = False,
) -> MatchResult:
    """Compare the invoice with one order; list every line that differs."""
    if order is None:
        diff = LineDifference("not_on_order", "no purchase order found for this invoice")
        return MatchResult(MatchStatus.unmatched, None, [diff], three_way=three_way)
    diffs: list[LineDifference] = []
    if not same_supplier(invoice, order):
        diffs.append(
            LineDifference(
                "supplier",
                f"supplier IČO {invoice.supplier.ico!r} / DIČ {invoice.supplier.dic!r} "
                f"is not the supplier of order {order.number}",
            )
        )
        return MatchResult(MatchStatus.unmatched, order, diffs, three_way=three_way)
    available = list(order.lines)
    pairs: dict[int, int] = {}
    clean = 0
    for index, line in enumerate(invoice.lines):
        ol = _pair(line, available)
        if ol is None:
            diffs.append(
                LineDifference(
                    "not_on_order",
                    f"line {index + 1} {line.description!r} is not on order {order.number}",
                    invoice_line=index,
                    invoiced=line.total,
                )
            )
            continue
        available.remove(ol)
        pairs[index] = ol.id
        before = len(diffs)
        qty = line.quantity if line.quantity is not None else Decimal(1)
        if abs(qty - ol.quantity) > tolerance.quantity:
            diffs.append(
                LineDifference(
                    "quantity",
                    f"line {index + 1} {line.description!r}: invoiced {qty}, ordered {ol.quantity}",
                    index,
                    ol.id,
                    qty,
                    ol.quantity,
                )
            )
        price = line.unit_price
        if price is None and line.total is not None and qty:
            price = line.total / qty
        if price is not None and _pct(price, ol.unit_price) > tolerance.price_pct:
            diffs.append(
                LineDifference(
                    "price",
                    f"line {index + 1} {line.description!r}: unit price {price}, ordered "
                    f"{ol.unit_price} (tolerance {tolerance.price_pct} %)",
                    index,
                    ol.id,
                    price,
                    ol.unit_price,
                )
            )
        if three_way and ol.received_quantity is not None:
            received = ol.received_quantity
            if qty - received > tolerance.quantity:
                diffs.append(
                    LineDifference(
                        "received",
                        f"line {index + 1} {line.description!r}: invoiced {qty}, received "
                        f"{received}",
                        index,
                        ol.id,
                        qty,
                        received,
                    )
                )
        clean += len(diffs) == before
    for ol in available:
        diffs.append(
            LineDifference(
                "not_invoiced",
                f"order line {ol.description!r} ({ol.quantity}) is not on the invoice",
                order_line=ol.id,
                expected=ol.quantity,
            )
        )
    ordered = sum((ol.quantity * ol.unit_price for ol in order.lines), Decimal(0))
    invoiced = invoice.total_without_vat
    if invoiced is None:
        invoiced = sum((ln.total or Decimal(0) for ln in invoice.lines), Decimal(0))
    if abs(invoiced - ordered) > tolerance.total_amount:
        diffs.append(
            LineDifference(
                "total",
                f"total without VAT {invoiced} differs from the order's {ordered} "
                f"(tolerance {tolerance.total_amount})",
                invoiced=invoiced,
                expected=ordered,
            )
        )
    if not diffs:
        status = MatchStatus.matched
    elif clean or pairs:
        status = MatchStatus.partial
    else:
        status = MatchStatus.unmatched
    return MatchResult(status, order, diffs, pairs, three_way)
