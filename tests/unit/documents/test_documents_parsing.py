from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from spojka.documents.parsing import find_iban, find_rate, parse_amount, parse_date


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12 345,67", "12345.67"),
        ("12\u00a0345,67", "12345.67"),
        ("12.345,67", "12345.67"),
        ("12,345.67", "12345.67"),
        ("1.234", "1234"),
        ("99,5", "99.5"),
        ("-1 200,00", "-1200.00"),
    ],
)
def test_amounts_in_cs_de_en_notation(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize(
    "text",
    ["15.03.2025", "15. 3. 2025", "2025-03-15", "15 March 2025", "March 15, 2025", "15. März 2025"],
)
def test_dates_in_the_usual_notations(text: str) -> None:
    assert parse_date(f"Datum: {text}") == date(2025, 3, 15)


def test_impossible_dates_are_not_dates() -> None:
    assert parse_date("31.02.2025") is None


def test_iban_needs_a_valid_checksum_and_may_be_grouped() -> None:
    assert find_iban("IBAN: CZ65 0800 0000 1920 0014 5399") == "CZ6508000000192000145399"
    assert find_iban("IBAN: CZ66 0800 0000 1920 0014 5399") is None


def test_rates_print_as_plain_numbers() -> None:
    assert str(find_rate("DPH 20 %")) == "20"
    assert str(find_rate("10,5%")) == "10.5"


def test_a_czech_domestic_account_converts_to_its_iban() -> None:
    from spojka.documents.parsing import cz_account_to_iban

    assert cz_account_to_iban("Číslo účtu: 19-2000145399/0800") == "CZ6508000000192000145399"
    assert cz_account_to_iban("Číslo účtu: 19-2000145398/0800") is None  # bad check digit


def test_two_digit_years_with_dots() -> None:
    assert parse_date("Vystaveno: 3.2.25") == date(2025, 2, 3)
    assert parse_date("verze 1.2.3") is None


def test_ocr_misread_date_separators() -> None:
    assert parse_date("13: 9: 2025") == date(2025, 9, 13)
