from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from spojka.model import ENTITIES, Account, Invoice, lookup_entity, lookup_field, terms_for
from spojka.model.identifiers import is_valid_dic, is_valid_ico


def test_ico_check_digit() -> None:
    assert is_valid_ico("25596641")  # a real Czech IČO
    assert not is_valid_ico("25596642")
    assert not is_valid_ico("2559664")
    assert not is_valid_ico("25596641\n") and not is_valid_ico("2559664١")  # only ASCII digits


def test_ico_check_digit_against_the_rule_written_out() -> None:
    """Weights 8..2 over the first seven digits; check = (11 - sum mod 11) mod 10."""
    for n in range(0, 10_000_000, 99_991):
        digits = [int(ch) for ch in f"{n:07d}"]
        check = (11 - sum(w * d for w, d in zip(range(8, 1, -1), digits, strict=True)) % 11) % 10
        for last in range(10):
            assert is_valid_ico(f"{n:07d}{last}") == (last == check)


def test_dic_formats() -> None:
    assert is_valid_dic("CZ25596641")
    assert is_valid_dic("SK2020317068")
    assert not is_valid_dic("SK12345678")
    assert not is_valid_dic("DE123456789")


def test_account_normalises_identifiers() -> None:
    acc = Account(
        name="Stavby Novák s.r.o.",
        ico="255 96641",
        dic="cz 25596641",
        email="Info@Novak.CZ",
        domain="https://www.novak.cz/kontakt",
    )
    assert (acc.ico, acc.dic, acc.email, acc.domain) == (
        "25596641",
        "CZ25596641",
        "info@novak.cz",
        "novak.cz",
    )


def test_account_rejects_bad_ico_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        Account(name="Firma", ico="12345678")
    assert err.value.errors()[0]["loc"] == ("ico",)


def test_account_name_is_mandatory() -> None:
    with pytest.raises(ValidationError):
        Account.model_validate({"ico": "25596641"})


def test_invoice_vat_breakdown_from_lines() -> None:
    inv = Invoice(
        number="FV2026001",
        account_id="a1",
        issued=date(2026, 1, 5),
        variable_symbol="2026001",
        lines=[
            {"description": "Konzultace", "quantity": 10, "unit_price": 1500},
            {"description": "Kniha", "quantity": 2, "unit_price": 300, "vat_rate": 12},
        ],
    )
    rates = {b.rate: (b.base, b.vat) for b in inv.vat_breakdown}
    assert rates[Decimal(21)] == (Decimal(15000), Decimal("3150.00"))
    assert rates[Decimal(12)] == (Decimal(600), Decimal("72.00"))
    assert inv.total == Decimal("18822.00")


def test_every_entity_has_version_and_vocabulary() -> None:
    assert len(ENTITIES) == 18
    for name, cls in ENTITIES.items():
        assert cls.contract_version == 1
        assert terms_for(name, "cs") and terms_for(name, "sk") and terms_for(name, "en")


@pytest.mark.parametrize(
    ("word", "entity"),
    [
        ("Firma", "Account"),
        ("zákazník", "Account"),
        ("odberatel", "Account"),
        ("Obchod", "Opportunity"),
        ("príležitosť", "Opportunity"),
        ("Zakázka", "Order"),
        ("objednávka", "Order"),
        ("Faktura", "Invoice"),
        ("daňový doklad", "Invoice"),
        ("Míľnik", "Milestone"),
        ("milník", "Milestone"),
        ("výkaz práce", "Timesheet"),
        ("Change request", "ChangeRequest"),
        ("nic takového", None),
    ],
)
def test_vocabulary_lookup(word: str, entity: str | None) -> None:
    assert lookup_entity(word) == entity


def test_field_lookup() -> None:
    assert lookup_field("IČ DPH") == "dic"
    assert lookup_field("Variabilní symbol") == "variable_symbol"
