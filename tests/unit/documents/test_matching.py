"""2-way and 3-way matching of supplier invoices against purchase orders."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from spojka.core.errors import ValidationError
from spojka.documents.matching import (
    MatchStatus,
    OrderLine,
    PurchaseOrder,
    Tolerance,
    Tolerances,
    find_order,
    match,
)
from spojka.documents.models import Invoice, InvoiceLine, Party

SUPPLIER = Party(name="Kancelářské potřeby Brno s.r.o.", ico="25596641", dic="CZ25596641")


def order(received: tuple[str, str] = ("10", "2")) -> PurchaseOrder:
    return PurchaseOrder(
        id=7,
        number="PO-2026-0012",
        reference="OBJ-88",
        supplier_ico="25596641",
        supplier_dic="CZ25596641",
        lines=[
            OrderLine(1, "Papír A4 80 g, 500 listů", D(10), D("120.00"), "PAP-A4", D(received[0])),
            OrderLine(2, "Toner HP 26A", D(2), D("1890.00"), None, D(received[1])),
        ],
    )


def invoice(**changes: object) -> Invoice:
    lines = [
        InvoiceLine(
            description="PAP-A4 Papír A4 80g",
            quantity=D(10),
            unit_price=D("120.00"),
            total=D("1200.00"),
        ),
        InvoiceLine(
            description="Toner HP 26A", quantity=D(2), unit_price=D("1890.00"), total=D("3780.00")
        ),
    ]
    base = {
        "number": "FV-1",
        "supplier": SUPPLIER,
        "lines": lines,
        "total_without_vat": D("4980.00"),
        "variable_symbol": "1",
    }
    base.update(changes)
    return Invoice.model_validate(base)


def test_an_invoice_that_agrees_with_its_order_is_matched() -> None:
    result = match(invoice(), order(), Tolerance())
    assert result.status is MatchStatus.matched
    assert result.differences == []
    assert result.pairs == {0: 1, 1: 2}


def test_price_within_the_suppliers_tolerance_still_matches_and_beyond_it_is_listed() -> None:
    lines = invoice().lines
    lines[1] = lines[1].model_copy(update={"unit_price": D("1920.00"), "total": D("3840.00")})
    inv = invoice(lines=lines, total_without_vat=D("5040.00"))
    loose = Tolerance(price_pct=D(2), total_amount=D(100))
    assert match(inv, order(), loose).status is MatchStatus.matched
    strict = match(inv, order(), Tolerance(price_pct=D(1), total_amount=D(100)))
    assert strict.status is MatchStatus.partial
    (diff,) = strict.differences
    assert diff.kind == "price" and diff.invoice_line == 1 and diff.expected == D("1890.00")


def test_quantity_and_total_differences_name_the_lines() -> None:
    lines = invoice().lines
    lines[0] = lines[0].model_copy(update={"quantity": D(12), "total": D("1440.00")})
    result = match(invoice(lines=lines, total_without_vat=D("5220.00")), order(), Tolerance())
    assert result.status is MatchStatus.partial
    assert [d.kind for d in result.differences] == ["quantity", "total"]
    assert "invoiced 12, ordered 10" in result.differences[0].message


def test_lines_not_on_the_order_and_order_lines_not_invoiced_are_listed() -> None:
    lines = [
        invoice().lines[0],
        InvoiceLine(description="Sešívačka", quantity=D(1), unit_price=D(300), total=D(300)),
    ]
    result = match(invoice(lines=lines, total_without_vat=D(1500)), order(), Tolerance())
    kinds = sorted(d.kind for d in result.differences)
    assert kinds == ["not_invoiced", "not_on_order", "total"]
    assert result.status is MatchStatus.partial


def test_three_way_flags_more_invoiced_than_received() -> None:
    assert match(invoice(), order(), Tolerance(), three_way=True).status is MatchStatus.matched
    result = match(invoice(), order(received=("10", "1")), Tolerance(), three_way=True)
    assert result.status is MatchStatus.partial
    (diff,) = result.differences
    assert diff.kind == "received" and diff.invoiced == D(2) and diff.expected == D(1)


def test_another_supplier_or_no_order_is_unmatched() -> None:
    other = invoice(supplier=Party(name="Jiný", ico="27074358"))
    assert match(other, order(), Tolerance()).status is MatchStatus.unmatched
    none = match(invoice(), None, Tolerance())
    assert none.status is MatchStatus.unmatched and none.differences[0].kind == "not_on_order"


def test_the_order_is_found_by_reference_among_the_suppliers_orders() -> None:
    second = PurchaseOrder(8, "PO-2026-0013", None, "25596641", None, [])
    foreign = PurchaseOrder(9, "PO-2026-0014", None, "27074358", None, [])
    orders = [second, order(), foreign]
    assert find_order(invoice(), orders, order_reference="PO-2026-0012").id == 7
    assert find_order(invoice(), orders, order_reference="OBJ-88").id == 7
    assert find_order(invoice(), orders) is None  # two candidates, no reference
    assert find_order(invoice(), [order(), foreign]).id == 7
    by_dic = invoice(supplier=Party(dic="CZ25596641"))
    assert find_order(by_dic, [order()], order_reference="PO-2026-0012").id == 7


def test_tolerances_per_supplier_override_category_and_default() -> None:
    tol = Tolerances.from_mapping(
        {
            "default": {"price_pct": 1},
            "categories": {"kancelář": {"price_pct": 3}},
            "suppliers": {"25596641": {"price_pct": 5, "quantity": 1}},
        }
    )
    assert tol.for_(supplier_ico="25596641", category="kancelář").price_pct == D(5)
    assert tol.for_(supplier_ico="1", category="kancelář").price_pct == D(3)
    assert tol.for_(supplier_ico=None).price_pct == D(1)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"default": {"price": 1}}, "unknown keys ['price']"),
        ({"default": {"price_pct": -1}}, "must not be negative"),
        ({"suppliers": {"1": 5}}, "must be a mapping"),
        ({"default": {"quantity": "x"}}, "must be numbers"),
    ],
)
def test_bad_tolerances_are_refused_with_a_clear_error(raw: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Tolerances.from_mapping(raw)
