"""Explicitly emptied fields versus fields a payload leaves out."""

from spojka.sync.mapping import parse_mapping
from spojka.sync.rules import OwnershipPolicy, merge_change

MAPPING = """
mapping: crm
version: 1
streams:
  firmy:
    entity: Account
    fields:
      name: nazev
      email: email
      phone: {from: [predvolba, telefon], transforms: [{concat: " "}]}
      kind: {default: customer}
"""

CURRENT = {"name": "Alfa s.r.o.", "email": "info@alfa.cz", "phone": "+420 777 111 222"}


def test_a_present_empty_column_is_a_clear_an_absent_one_is_not() -> None:
    sm = parse_mapping(MAPPING).streams["firmy"]
    assert sm.cleared({"nazev": "Alfa s.r.o.", "email": None}) == ["email"]
    assert sm.cleared({"nazev": "Alfa s.r.o.", "email": ""}) == ["email"]
    assert sm.cleared({"nazev": "Alfa s.r.o."}) == []  # partial payload: nothing cleared
    assert sm.cleared({"nazev": "Alfa", "predvolba": None, "telefon": ""}) == ["phone"]
    assert sm.cleared({"nazev": "Alfa", "telefon": "777 111 222"}) == []
    # a defaulted field is never empty; an empty string is not stored as a value
    assert '"email"' not in sm.canonical_text({"nazev": "Alfa", "email": ""})


def test_merge_applies_a_clear_and_ignores_absent_fields() -> None:
    result = merge_change(
        entity="Account",
        system="crm",
        base=None,
        current=CURRENT,
        incoming={"name": "Alfa s.r.o.", "email": None},
        policy=OwnershipPolicy(),
    )
    assert result.changed == ["email"] and not result.issues
    assert result.data == {"name": "Alfa s.r.o.", "phone": "+420 777 111 222"}


def test_clearing_an_empty_field_changes_nothing() -> None:
    result = merge_change(
        entity="Account",
        system="crm",
        base=None,
        current={"name": "Alfa s.r.o."},
        incoming={"name": "Alfa s.r.o.", "email": None},
        policy=OwnershipPolicy(),
    )
    assert result.changed == [] and not result.issues


def test_a_clear_by_a_non_owner_is_a_conflict_like_any_change() -> None:
    result = merge_change(
        entity="Account",
        system="erp",
        base=None,
        current=CURRENT,
        incoming={"email": None},
        policy=OwnershipPolicy(owners={("Account", "email"): "crm"}),
    )
    [issue] = result.issues
    assert (issue.field, issue.kind, issue.current, issue.incoming) == (
        "email",
        "non_owner",
        "info@alfa.cz",
        None,
    )
    assert result.data == CURRENT


def test_a_clear_against_a_concurrent_edit_is_a_conflict() -> None:
    result = merge_change(
        entity="Account",
        system="erp",
        base=CURRENT,
        current={**CURRENT, "email": "obchod@alfa.cz"},  # edited meanwhile in the CRM
        incoming={"email": None},  # emptied in the ERP
        policy=OwnershipPolicy(),
    )
    [issue] = result.issues
    assert issue.kind == "concurrent" and issue.incoming is None
    assert result.data["email"] == "obchod@alfa.cz"
