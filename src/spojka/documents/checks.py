"""Checks on a read invoice. Each failed check is a named exception with a clear message.

``run_checks`` returns the failures (it does not raise) so a worklist can show all of them;
``raise_first`` raises the first for callers that stop on any.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from stdnum import iban as stdnum_iban
from stdnum.cz import dic as cz_dic
from stdnum.eu import vat as eu_vat
from stdnum.sk import dph as sk_dph

from spojka.core.errors import ValidationError
from spojka.documents.models import Invoice, Party

CENT = Decimal("0.01")


class InvoiceCheckFailed(ValidationError):
    """Base of every failed invoice check; ``field`` names the field at fault."""

    code = "invoice_check"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, detail={"field": field, "check": type(self).__name__})
        self.field = field


class LineTotalMismatch(InvoiceCheckFailed):
    code = "line_total_mismatch"


class BreakdownMismatch(InvoiceCheckFailed):
    code = "breakdown_mismatch"


class TotalsMismatch(InvoiceCheckFailed):
    code = "totals_mismatch"


class AmountDueMismatch(InvoiceCheckFailed):
    code = "amount_due_mismatch"


class InvalidVatRate(InvoiceCheckFailed):
    code = "invalid_vat_rate"


class InvalidIco(InvoiceCheckFailed):
    code = "invalid_ico"


class InvalidDic(InvoiceCheckFailed):
    code = "invalid_dic"


class InvalidIban(InvoiceCheckFailed):
    code = "invalid_iban"


class DueBeforeIssue(InvoiceCheckFailed):
    code = "due_before_issue"


class MissingField(InvoiceCheckFailed):
    code = "missing_field"


class DuplicateInvoice(InvoiceCheckFailed):
    code = "duplicate_invoice"


# VAT rates in force by country: (valid from, rates). Zero covers exempt and reverse charge.
VAT_RATES: dict[str, list[tuple[date, frozenset[Decimal]]]] = {
    "CZ": [
        (date(2015, 1, 1), frozenset(map(Decimal, ("21", "15", "10", "0")))),
        (date(2024, 1, 1), frozenset(map(Decimal, ("21", "12", "0")))),
    ],
    "SK": [
        # 5 % has applied to selected goods since 2020, alongside 20 and 10
        (date(2011, 1, 1), frozenset(map(Decimal, ("20", "10", "5", "0")))),
        (date(2025, 1, 1), frozenset(map(Decimal, ("23", "19", "5", "0")))),
    ],
    "DE": [
        (date(2007, 1, 1), frozenset(map(Decimal, ("19", "7", "0")))),
        (date(2020, 7, 1), frozenset(map(Decimal, ("16", "5", "0")))),
        (date(2021, 1, 1), frozenset(map(Decimal, ("19", "7", "0")))),
    ],
}


def valid_rates(country: str, on: date) -> frozenset[Decimal] | None:
    periods = VAT_RATES.get(country.upper())
    if not periods:
        return None
    current = None
    for start, rates in periods:
        if on >= start:
            current = rates
    return current


def supplier_country(inv: Invoice) -> str | None:
    for value in (inv.supplier.vat_id, inv.supplier.dic):
        if value and value[:2].isalpha():
            return value[:2].upper()
    if inv.supplier.country:
        return inv.supplier.country.upper()
    return None


def check_lines(inv: Invoice) -> list[InvoiceCheckFailed]:
    out: list[InvoiceCheckFailed] = []
    for i, ln in enumerate(inv.lines, start=1):
        if ln.quantity is None or ln.unit_price is None or ln.total is None:
            continue
        expected = (ln.quantity * ln.unit_price).quantize(CENT)
        if abs(expected - ln.total) > CENT:
            out.append(
                LineTotalMismatch(
                    f"line {i}: {ln.quantity} × {ln.unit_price} = {expected}, "
                    f"but the line total says {ln.total}",
                    field=f"lines[{i}].total",
                )
            )
    return out


def check_breakdown(inv: Invoice) -> list[InvoiceCheckFailed]:
    out: list[InvoiceCheckFailed] = []
    lines_known = inv.lines and all(
        ln.total is not None and ln.vat_rate is not None for ln in inv.lines
    )
    per_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
    counts: dict[Decimal, int] = defaultdict(int)
    if lines_known:
        for ln in inv.lines:
            assert ln.vat_rate is not None and ln.total is not None
            per_rate[ln.vat_rate] += ln.total
            counts[ln.vat_rate] += 1
    for row in inv.vat_breakdown:
        if row.base is None or row.tax is None:
            continue
        tolerance = CENT * max(1, counts.get(row.rate, 1))
        expected_tax = (row.base * row.rate / 100).quantize(CENT)
        if abs(expected_tax - row.tax) > tolerance:
            out.append(
                BreakdownMismatch(
                    f"VAT {row.rate} %: {row.rate} % of {row.base} is {expected_tax}, "
                    f"but the breakdown says {row.tax}",
                    field="vat_breakdown",
                )
            )
        if lines_known and abs(per_rate.get(row.rate, Decimal(0)) - row.base) > tolerance:
            out.append(
                BreakdownMismatch(
                    f"VAT {row.rate} %: the lines add up to {per_rate.get(row.rate, Decimal(0))}, "
                    f"but the breakdown base says {row.base}",
                    field="vat_breakdown",
                )
            )
    return out


def check_totals(inv: Invoice) -> list[InvoiceCheckFailed]:
    out: list[InvoiceCheckFailed] = []
    rows = [r for r in inv.vat_breakdown if r.base is not None and r.tax is not None]
    tol = CENT * max(1, len(rows))
    if rows and inv.total_without_vat is not None:
        base = sum((r.base for r in rows if r.base is not None), Decimal(0))
        if abs(base - inv.total_without_vat) > tol:
            out.append(
                TotalsMismatch(
                    f"the VAT breakdown bases add up to {base}, but the total without VAT "
                    f"says {inv.total_without_vat}",
                    field="total_without_vat",
                )
            )
    if rows and inv.total_vat is not None:
        tax = sum((r.tax for r in rows if r.tax is not None), Decimal(0))
        if abs(tax - inv.total_vat) > tol:
            out.append(
                TotalsMismatch(
                    f"the VAT breakdown adds up to {tax} VAT, but the total VAT says "
                    f"{inv.total_vat}",
                    field="total_vat",
                )
            )
    a, b, c = inv.total_without_vat, inv.total_vat, inv.total_with_vat
    if a is not None and b is not None and c is not None and abs(a + b - c) > CENT:
        out.append(
            TotalsMismatch(
                f"{a} without VAT + {b} VAT = {a + b}, but the total with VAT says {c}",
                field="total_with_vat",
            )
        )
    # less than the total is fine (an advance was paid); rounding to whole units is at most
    # 0.50 either way
    if c is not None and inv.amount_due is not None and inv.amount_due - c > Decimal("0.50"):
        out.append(
            AmountDueMismatch(
                f"the amount due {inv.amount_due} is more than the total with VAT {c}",
                field="amount_due",
            )
        )
    return out


def check_vat_rates(inv: Invoice) -> list[InvoiceCheckFailed]:
    country = supplier_country(inv)
    when = inv.tax_point_date or inv.issue_date
    if country is None or when is None:
        return []
    allowed = valid_rates(country, when)
    if allowed is None:
        return []
    rates = {r.rate for r in inv.vat_breakdown} | {
        ln.vat_rate for ln in inv.lines if ln.vat_rate is not None
    }
    return [
        InvalidVatRate(
            f"VAT rate {rate} % is not valid in {country} on {when.isoformat()} "
            f"(valid: {', '.join(str(r) for r in sorted(allowed, reverse=True))} %)",
            field="vat_breakdown",
        )
        for rate in sorted(rates)
        if rate not in allowed
    ]


def _ico_valid(ico: str) -> bool:
    # Czech and Slovak IČO share the weighted mod-11 check digit that cz.dic checks for
    # 8-digit legal-entity numbers
    return len(ico) == 8 and ico.isdigit() and cz_dic.is_valid(ico)


def check_party(party: Party, role: str) -> list[InvoiceCheckFailed]:
    out: list[InvoiceCheckFailed] = []
    if party.ico and not _ico_valid(party.ico):
        out.append(
            InvalidIco(f"{role} IČO {party.ico} has a wrong check digit", field=f"{role}.ico")
        )
    for key in ("dic", "vat_id"):
        value: str | None = getattr(party, key)
        if not value:
            continue
        prefix = value[:2].upper()
        ok = True
        if prefix == "CZ":
            ok = cz_dic.is_valid(value)
        elif prefix == "SK":
            ok = sk_dph.is_valid(value)
        elif key == "dic" and value.isdigit() and len(value) == 10:
            ok = sk_dph.is_valid("SK" + value)  # Slovak DIČ: same number as the IČ DPH
        elif key == "vat_id" and value[:2].isalpha():
            ok = eu_vat.is_valid(value)  # other EU VAT ids (DE, AT, PL …) by their own rules
        if not ok:
            out.append(
                InvalidDic(
                    f"{role} {'DIČ' if key == 'dic' else 'VAT id'} {value} is not valid",
                    field=f"{role}.{key}",
                )
            )
    return out


def check_iban(inv: Invoice) -> list[InvoiceCheckFailed]:
    if inv.iban and not stdnum_iban.is_valid(inv.iban):
        return [InvalidIban(f"IBAN {inv.iban} fails its checksum", field="iban")]
    return []


def check_dates(inv: Invoice) -> list[InvoiceCheckFailed]:
    if inv.issue_date and inv.due_date and inv.due_date < inv.issue_date:
        return [
            DueBeforeIssue(
                f"due date {inv.due_date.isoformat()} is before the issue date "
                f"{inv.issue_date.isoformat()}",
                field="due_date",
            )
        ]
    return []


REQUIRED = ("number", "issue_date", "supplier.name", "total_with_vat")


def check_required(inv: Invoice) -> list[InvoiceCheckFailed]:
    return [
        MissingField(f"{path} could not be read from the document", field=path)
        for path in REQUIRED
        if inv.get(path) in (None, "")
    ]


CHECKS: tuple[Callable[[Invoice], list[InvoiceCheckFailed]], ...] = (
    check_required,
    check_lines,
    check_breakdown,
    check_totals,
    check_vat_rates,
    lambda inv: check_party(inv.supplier, "supplier"),
    lambda inv: check_party(inv.customer, "customer"),
    check_iban,
    check_dates,
)


def run_checks(inv: Invoice) -> list[InvoiceCheckFailed]:
    """Every failed check of one invoice (duplicates are checked by the service, which has
    the database)."""
    failures: list[InvoiceCheckFailed] = []
    for check in CHECKS:
        failures.extend(check(inv))
    return failures


def raise_first(inv: Invoice) -> None:
    failures = run_checks(inv)
    if failures:
        raise failures[0]
