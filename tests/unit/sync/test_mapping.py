from decimal import Decimal

import pytest

from spojka.sync.mapping import MappingError, RecordError, parse_mapping, parse_money, parse_number

GOOD = """
mapping: crm
version: 3
lookups:
  faze: {Nový: lead, Vyhráno: won}
streams:
  obchody:
    entity: Obchod
    direction: both
    fields:
      name: {from: [nazev, mesto], transforms: [{concat: " – "}]}
      account_id: firma
      stage: {from: faze, transforms: [{lookup: faze}]}
      amount: {from: castka, transforms: [parse_money]}
      currency: {from: castka, transforms: [{parse_money: {part: currency}}]}
      expected_close: {from: datum, transforms: [{parse_date: "%d.%m.%Y"}]}
      probability: {from: sance, default: 10}
"""


def test_mapping_maps_and_validates_a_record() -> None:
    mapping = parse_mapping(GOOD)
    sm = mapping.streams["obchody"]
    assert sm.entity == "Opportunity" and mapping.label == "crm@3"
    data = sm.to_canonical(
        {
            "nazev": "Rekonstrukce",
            "mesto": "Brno",
            "firma": "a1",
            "faze": "vyhráno",
            "castka": "1 250 000,50 Kč",
            "datum": "5.3.2026",
        }
    )
    assert data == {
        "name": "Rekonstrukce – Brno",
        "account_id": "a1",
        "stage": "won",
        "amount": "1250000.50",
        "currency": "CZK",
        "expected_close": "2026-03-05",
        "probability": 10,
    }


def test_outbound_is_the_inverse_for_plain_fields_and_lookups() -> None:
    sm = parse_mapping(GOOD).streams["obchody"]
    out = sm.to_target({"name": "X", "account_id": "a1", "stage": "won"})
    assert out == {"firma": "a1", "faze": "Vyhráno"}


def test_bad_record_names_the_field() -> None:
    sm = parse_mapping(GOOD).streams["obchody"]
    with pytest.raises(RecordError) as err:
        sm.to_canonical({"nazev": "X", "firma": "a1", "faze": "Ztraceno"})
    assert "obchody.stage" in err.value.message
    with pytest.raises(RecordError) as err:
        sm.to_canonical({"nazev": "X", "firma": "a1", "sance": "150"})
    assert "Opportunity.probability" in err.value.message


def test_check_reports_file_line_and_field_for_every_problem() -> None:
    text = GOOD.replace(
        "stage: {from: faze, transforms: [{lookup: faze}]}",
        "stage: {from: faze, transforms: [{lookup: stavy}]}",
    )
    text = text.replace("      account_id: firma\n", "      acount_id: firma\n")
    with pytest.raises(MappingError) as err:
        parse_mapping(text, file="crm.yaml")
    messages = [str(p) for p in err.value.problems]
    assert any(
        m.startswith("crm.yaml:12: Opportunity.acount_id: Opportunity has no field")
        for m in messages
    )
    assert any(
        m.startswith("crm.yaml:13: Opportunity.stage: lookup table 'stavy'") for m in messages
    )
    assert any("mandatory field 'account_id'" in m for m in messages)


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping("version: 1\nstreams:\n  a: [\n", file="x.yaml")
    assert err.value.problems[0].line is not None


def test_version_is_mandatory() -> None:
    with pytest.raises(MappingError, match="version"):
        parse_mapping(GOOD.replace("version: 3\n", ""))


def test_number_and_money_parsing() -> None:
    assert parse_number("1 234,5") == Decimal("1234.5")
    assert parse_number("1,234.5") == Decimal("1234.5")
    assert parse_money("12 500,- Kč") == Decimal("12500")
    assert parse_money("€ 99.90", part="currency") == "EUR"


def test_unit_and_currency_transforms() -> None:
    text = """
version: 1
streams:
  produkty:
    entity: Product
    fields:
      code: kod
      name: nazev
      list_price: {from: cena_eur, transforms: [{currency: {from: EUR, to: CZK, rate: 25}}]}
      extra: {const: {}}
"""
    sm = parse_mapping(text).streams["produkty"]
    assert (
        sm.to_canonical({"kod": "P1", "nazev": "Šroub", "cena_eur": "2,5"})["list_price"] == "62.50"
    )
