"""Pure rules: the reminder policy read from documents-ap.yaml, and how a model's answers are
validated before any of them is kept."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from spojka.core.errors import ValidationError
from spojka.documents.model_assist import ModelEndpoint, unsure_fields, validate
from spojka.documents.models import FieldInfo, Invoice, InvoiceLine, VatBreakdown
from spojka.documents.reminders import ReminderPolicy


def test_reminder_policy_defaults_and_escalation_levels() -> None:
    policy = ReminderPolicy.from_mapping(
        {"remind_after": 3600, "recipients": {"approver": "petra@firma.cz"}},
        finance_role="finance",
    )
    assert policy.escalate_after == 7200  # twice the reminder when not given
    assert policy.recipients["approver"] == ("petra@firma.cz",)
    assert policy.next_role("approver") == "finance"
    assert policy.next_role("finance") == "admin"
    custom = ReminderPolicy.from_mapping(
        {"remind_after": 10, "escalate_after": 20, "escalate_to": {"approver": "cfo"}},
        finance_role="finance",
    )
    assert custom.next_role("approver") == "cfo"
    assert ReminderPolicy.from_step_value(custom.as_step_value()) == custom


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"remind_after": 0}, "remind_after must be a positive"),
        ({"remind_after": 60, "escalate_after": 60}, "escalate_after must be later"),
        ({"remind_after": "soon"}, "must be numbers of seconds"),
        ({"recipients": {"approver": ["petra"]}}, "recipients.approver must be e-mail"),
        ({"remind": 60}, "unknown keys"),
    ],
)
def test_a_wrong_reminder_policy_is_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReminderPolicy.from_mapping(raw, finance_role="finance")


def test_model_endpoint_needs_url_and_model() -> None:
    with pytest.raises(ValidationError, match="url and model are required"):
        ModelEndpoint.from_mapping({"url": "http://127.0.0.1:8080/v1"})
    with pytest.raises(ValidationError, match="unknown keys"):
        ModelEndpoint.from_mapping({"url": "http://x", "model": "m", "temperature": 0})


def _invoice() -> Invoice:
    inv = Invoice(
        number="FV-1",
        issue_date=date(2026, 3, 2),
        currency="CZK",
        lines=[
            InvoiceLine(
                description="Práce",
                quantity=Decimal(1),
                unit_price=Decimal(100),
                vat_rate=Decimal(21),
                total=Decimal(100),
            )
        ],
        vat_breakdown=[VatBreakdown(rate=Decimal(21), base=Decimal(100), tax=Decimal(21))],
        total_without_vat=Decimal(100),
        total_vat=Decimal(21),
        total_with_vat=Decimal(121),
    )
    inv.supplier.name = "Dodavatel s.r.o."
    for path in ("number", "issue_date", "currency", "supplier.name", "total_with_vat"):
        inv.fields[path] = FieldInfo(source="text", confidence=0.9)
    return inv


def test_empty_and_low_confidence_fields_are_unsure_but_never_xml_or_a_persons() -> None:
    inv = _invoice()
    inv.fields["currency"] = FieldInfo(source="ocr", confidence=0.4)
    inv.fields["number"] = FieldInfo(source="person", confidence=1.0)
    output = inv.model_dump(mode="json")
    unsure = unsure_fields(output, 0.75)
    assert "currency" in unsure and "due_date" in unsure and "iban" in unsure
    assert "number" not in unsure and "supplier.name" not in unsure


def test_model_values_are_kept_only_when_they_parse_and_break_no_check() -> None:
    asked = ["due_date", "amount_due", "iban", "total_vat", "variable_symbol"]
    updated, accepted, rejected = validate(
        _invoice(),
        {
            "due_date": "2026-03-16",
            "amount_due": "121.00",
            "iban": "CZ6508000000192000145398",  # checksum fails
            "total_vat": "25",  # makes the totals disagree
            "variable_symbol": None,  # the model does not know: nothing happens
            "customer.name": "Odběratel a.s.",  # not asked for
        },
        asked=asked,
        confidence=0.6,
    )
    assert accepted == {"due_date": date(2026, 3, 16), "amount_due": Decimal("121.00")}
    assert updated.fields["due_date"] == FieldInfo(source="model", confidence=0.6)
    reasons = {r["field"]: r["reason"] for r in rejected}
    assert "InvalidIban" in reasons["iban"]
    assert "TotalsMismatch" in reasons["total_vat"] or "BreakdownMismatch" in reasons["total_vat"]
    assert reasons["customer.name"] == "not asked for"
    assert updated.iban is None and updated.total_vat == Decimal(21)
    bad_date = validate(_invoice(), {"due_date": "16. 3."}, asked=asked, confidence=0.6)[2]
    assert "not an ISO date" in bad_date[0]["reason"]
