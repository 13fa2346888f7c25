"""Each failed check is a named exception with a message a person understands."""

# ruff: noqa: E501  (one invoice line per source line reads better)
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from spojka.documents import checks
from spojka.documents.models import Invoice, InvoiceLine, Party, VatBreakdown


def good_invoice() -> Invoice:
    return Invoice(
        number="FV2025-0001",
        issue_date=date(2025, 3, 3),
        tax_point_date=date(2025, 3, 1),
        due_date=date(2025, 3, 17),
        currency="CZK",
        iban="CZ6508000000192000145399",
        supplier=Party(name="Dřevo Příbram s.r.o.", ico="25097563", dic="CZ25097563", vat_id="CZ25097563"),
        customer=Party(name="Tlačiareň Žilina a.s.", ico="35763469", vat_id="SK2020317068", dic="2020317068"),
        lines=[
            InvoiceLine(description="Palety", quantity=Decimal(3), unit="ks", unit_price=Decimal("100.50"), vat_rate=Decimal(21), total=Decimal("301.50")),
            InvoiceLine(description="Kniha", quantity=Decimal(1), unit="ks", unit_price=Decimal("200"), vat_rate=Decimal(12), total=Decimal("200.00")),
        ],
        vat_breakdown=[
            VatBreakdown(rate=Decimal(21), base=Decimal("301.50"), tax=Decimal("63.32")),
            VatBreakdown(rate=Decimal(12), base=Decimal("200.00"), tax=Decimal("24.00")),
        ],
        total_without_vat=Decimal("501.50"),
        total_vat=Decimal("87.32"),
        total_with_vat=Decimal("588.82"),
        amount_due=Decimal("589.00"),  # rounded to whole crowns
    )  # fmt: skip


def names(inv: Invoice) -> list[str]:
    return [type(f).__name__ for f in checks.run_checks(inv)]


def test_a_correct_invoice_passes_every_check() -> None:
    assert checks.run_checks(good_invoice()) == []


def test_line_arithmetic() -> None:
    inv = good_invoice()
    inv.lines[0].total = Decimal("310.50")
    failures = checks.run_checks(inv)
    assert isinstance(failures[0], checks.LineTotalMismatch)
    assert "3 × 100.50 = 301.50" in failures[0].message


def test_one_cent_per_line_is_tolerated() -> None:
    inv = good_invoice()
    inv.lines[0].total = Decimal("301.51")
    assert "LineTotalMismatch" not in names(inv)


def test_breakdown_and_totals_must_agree() -> None:
    inv = good_invoice()
    inv.vat_breakdown[0].tax = Decimal("70.00")
    assert "BreakdownMismatch" in names(inv)
    inv = good_invoice()
    inv.total_with_vat = Decimal("600.00")
    assert "TotalsMismatch" in names(inv)
    inv = good_invoice()
    inv.amount_due = Decimal("700.00")
    assert "AmountDueMismatch" in names(inv)


@pytest.mark.parametrize(
    ("country_vat", "when", "rate", "valid"),
    [
        ("CZ25097563", date(2023, 12, 31), 15, True),
        ("CZ25097563", date(2024, 1, 1), 15, False),
        ("CZ25097563", date(2024, 1, 1), 12, True),
        ("SK2020317068", date(2024, 12, 31), 20, True),
        ("SK2020317068", date(2025, 1, 1), 20, False),
        ("SK2020317068", date(2025, 1, 1), 23, True),
        ("SK2020317068", date(2025, 1, 1), 19, True),
    ],
)
def test_vat_rates_by_country_and_date(
    country_vat: str, when: date, rate: int, valid: bool
) -> None:
    inv = good_invoice()
    inv.supplier.vat_id = country_vat
    inv.supplier.dic = None
    inv.tax_point_date = when
    inv.lines = []
    inv.vat_breakdown = [VatBreakdown(rate=Decimal(rate), base=Decimal(100), tax=Decimal(rate))]
    inv.total_without_vat, inv.total_vat = Decimal(100), Decimal(rate)
    inv.total_with_vat = inv.amount_due = Decimal(100 + rate)
    failures = [f for f in checks.run_checks(inv) if isinstance(f, checks.InvalidVatRate)]
    assert (failures == []) is valid
    if not valid:
        assert f"{rate} % is not valid in {country_vat[:2]}" in failures[0].message


def test_identifiers() -> None:
    inv = good_invoice()
    inv.supplier.ico = "25097564"
    inv.customer.vat_id = "SK2020317069"
    inv.iban = "CZ6608000000192000145399"
    got = names(inv)
    assert {"InvalidIco", "InvalidDic", "InvalidIban"} <= set(got)


def test_due_date_must_follow_issue_date() -> None:
    inv = good_invoice()
    inv.due_date = date(2025, 3, 1)
    failure = next(f for f in checks.run_checks(inv) if isinstance(f, checks.DueBeforeIssue))
    assert failure.field == "due_date" and "before the issue date" in failure.message


def test_missing_essentials_are_named() -> None:
    inv = good_invoice()
    inv.number = None
    assert "MissingField" in names(inv)


def test_raise_first_raises_the_named_exception() -> None:
    inv = good_invoice()
    inv.due_date = date(2020, 1, 1)
    with pytest.raises(checks.DueBeforeIssue):
        checks.raise_first(inv)


def test_other_eu_vat_ids_are_checked_too() -> None:
    inv = good_invoice()
    inv.customer = Party(name="Müller GmbH", vat_id="DE136695976")
    assert checks.check_party(inv.customer, "customer") == []
    inv.customer.vat_id = "DE136695977"
    assert [type(f).__name__ for f in checks.check_party(inv.customer, "customer")] == [
        "InvalidDic"
    ]
