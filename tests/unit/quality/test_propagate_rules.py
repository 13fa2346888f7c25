"""Pure rules of propagation: who owns a field, what counts as a difference, who survives."""

from __future__ import annotations

from datetime import datetime

from spojka.quality.models import QualityRecord
from spojka.quality.propagate import owner_of, same_value, survivor_of, writes_field
from spojka.sync.mapping import parse_mapping


def test_the_sync_declaration_wins_over_the_survivorship_owner() -> None:
    declared = {"name": "erp"}
    assert owner_of(sync_owner=declared.get, entity="account", field_name="name") == "erp"
    # nothing declared in sync: the quality survivorship owner (CRM for e-mail, ERP for IČO)
    assert owner_of(sync_owner=declared.get, entity="account", field_name="email") == "crm"
    assert owner_of(sync_owner=declared.get, entity="account", field_name="ico") == "erp"
    assert owner_of(sync_owner=declared.get, entity="account", field_name="note") is None


def test_formatting_alone_is_no_difference() -> None:
    assert same_value("account", "phone", "602 123 456", "+420602123456")
    assert same_value("account", "email", "Obchod@Firma.CZ", "obchod@firma.cz")
    assert same_value("account", "email", None, "")
    assert not same_value("account", "email", None, "obchod@firma.cz")
    assert not same_value("account", "name", "Novák a syn s.r.o.", "Svoboda a.s.")


def test_the_most_recently_updated_record_of_a_system_survives() -> None:
    old = QualityRecord(id=1, external_id="c1", source_updated_at=datetime(2026, 1, 1))
    new = QualityRecord(id=2, external_id="c2", source_updated_at=datetime(2026, 3, 1))
    undated = QualityRecord(id=3, external_id="c3", source_updated_at=None)
    assert survivor_of([old, new, undated]) is new
    twin = QualityRecord(id=4, external_id="c4", source_updated_at=datetime(2026, 3, 1))
    assert survivor_of([twin, new]) is new  # same time: the first stored stays


def test_only_fields_with_an_outbound_column_are_written() -> None:
    mapping = parse_mapping(
        """
mapping: crm
version: 1
streams:
  firmy:
    entity: Account
    direction: in
    fields: {name: nazev, ico: ic, email: email}
    outbound:
      fields: {nazev: name}
"""
    )
    sm = mapping.streams["firmy"]
    assert writes_field(sm, "name")
    assert not writes_field(sm, "email")
