"""Survivorship: owner system first, then most recent valid, then most complete."""

from __future__ import annotations

from datetime import UTC, datetime

from spojka.quality.survivorship import SourceRecord, golden_record


def _at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def test_owner_system_wins_even_when_older() -> None:
    crm = SourceRecord("1", "crm", {"name": "ACME s.r.o."}, _at(1))
    erp = SourceRecord("2", "erp", {"name": "Acme spol. s r.o."}, _at(9))
    golden = golden_record("account", [erp, crm])
    assert golden.values["name"] == "ACME s.r.o."
    assert golden.lineage["name"].rule == "owner system"
    assert golden.lineage["name"].record_id == "1"


def test_most_recent_valid_value_when_the_owner_has_none() -> None:
    crm = SourceRecord("1", "crm", {"name": "ACME"}, _at(1))
    pm_old = SourceRecord("2", "pm", {"dic": "CZ25596641"}, _at(2))
    pm_new = SourceRecord("3", "pm", {"dic": "CZ25596642"}, _at(5), frozenset({"dic"}))
    golden = golden_record("account", [crm, pm_old, pm_new])
    assert golden.values["dic"] == "CZ25596641"  # the newer one is invalid
    assert golden.lineage["dic"].rule == "most recent valid"


def test_most_complete_value_when_none_is_valid() -> None:
    a = SourceRecord("1", "pm", {"ico": "2559664"}, _at(3), frozenset({"ico"}))
    b = SourceRecord("2", "pm", {"ico": "25596642"}, _at(1), frozenset({"ico"}))
    golden = golden_record("account", [a, b])
    assert golden.values["ico"] == "25596642"
    assert golden.lineage["ico"].rule == "most complete"


def test_custom_ownership_and_every_field_has_lineage() -> None:
    crm = SourceRecord("1", "crm", {"name": "A", "phone": "+420601123456"}, _at(1))
    erp = SourceRecord("2", "erp", {"name": "B", "city": "Brno"}, _at(2))
    golden = golden_record("account", [crm, erp], ownership={"name": "erp"})
    assert golden.values == {"name": "B", "phone": "+420601123456", "city": "Brno"}
    assert set(golden.lineage) == set(golden.values)
