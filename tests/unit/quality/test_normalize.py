"""Normalisers: examples people type in CZ/SK systems, and properties over generated input."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cz import dic as std_cz_dic

from spojka.quality import normalize as nz
from spojka.quality.generator import ico_check_digit, strip_diacritics


@pytest.mark.parametrize(
    ("raw", "key", "legal_form"),
    [
        ("ACME s.r.o.", "acme", "s.r.o."),
        ("Acme, spol. s r.o.", "acme", "s.r.o."),
        ("ACME spol. s r. o.", "acme", "s.r.o."),
        ("Acme sro", "acme", "s.r.o."),
        ("Stavby Novák a.s.", "stavby novak", "a.s."),
        ("Stavby Novák, akciová společnost", "stavby novak", "a.s."),
        ("Slovnaft, a. s.", "slovnaft", "a.s."),
        ("Novák a syn, v.o.s.", "novak a syn", "v.o.s."),
        ("Müller GmbH & Co. KG", "muller", "GmbH & Co. KG"),
        ("Siemens AG", "siemens", "AG"),
        ("Acme Ltd.", "acme", "Ltd"),
        ("AS Company", "as company", None),
        ("Agrodružstvo Jevíčko", "agrodruzstvo jevicko", None),
    ],
)
def test_company_names_lose_legal_form_case_and_diacritics(
    raw: str, key: str, legal_form: str | None
) -> None:
    name = nz.normalize_company_name(raw)
    assert (name.key, name.legal_form) == (key, legal_form)


def test_company_display_uses_the_canonical_legal_form() -> None:
    assert nz.normalize_company_name("Acme,  spol. s r. o.").display == "Acme s.r.o."


def test_branch_words_mark_an_establishment() -> None:
    assert nz.normalize_company_name("Acme s.r.o., pobočka Brno").is_branch
    assert nz.normalize_company_name("ACME s.r.o. - provozovna Kolín").is_branch
    assert not nz.normalize_company_name("Acme s.r.o.").is_branch


_NAME_WORD = st.sampled_from(
    ["Stavby", "Novák", "Žluťoučký", "Kůň", "ALFA", "Tatry", "Dřevo", "Beneš", "Horváth", "Ľubica"]
)
_FORMS = st.sampled_from(["s.r.o.", "spol. s r.o.", "s. r. o.", "a.s.", "a. s.", "v.o.s.", ""])


@given(words=st.lists(_NAME_WORD, min_size=1, max_size=4), form=_FORMS)
def test_company_key_ignores_case_diacritics_and_legal_form_spelling(
    words: list[str], form: str
) -> None:
    base = " ".join(words)
    plain = nz.normalize_company_name(f"{base} {form}".strip())
    shouted = nz.normalize_company_name(strip_diacritics(f"{base}, {form}".upper()).strip(", "))
    assert plain.key == shouted.key
    assert plain.legal_form == shouted.legal_form


@given(st.text(max_size=60))
def test_company_name_never_crashes_otherwise_than_invalid(raw: str) -> None:
    try:
        name = nz.normalize_company_name(raw)
    except nz.InvalidValue as exc:
        assert exc.problem == "name_missing"
    else:
        assert name.key == nz.normalize_company_name(name.display).key


@given(st.integers(min_value=0, max_value=9_999_999))
def test_every_valid_ico_normalises_to_itself_and_agrees_with_stdnum(first7: int) -> None:
    digits = f"{first7:07d}"
    ico = digits + str(ico_check_digit(digits))
    assert nz.normalize_ico(ico) == ico
    assert nz.normalize_ico(f"IČO: {ico[:3]} {ico[3:]}") == ico
    if not ico.startswith("9"):  # stdnum keeps 9xxxxxxx for DIČ of foreign persons
        assert std_cz_dic.is_valid(ico)
    # leading zeros dropped by a spreadsheet come back
    assert nz.normalize_ico(ico.lstrip("0") or "0") == ico


@given(st.integers(min_value=0, max_value=9_999_999), st.integers(0, 7), st.integers(1, 9))
def test_a_single_mistyped_ico_digit_is_always_caught(
    first7: int, position: int, shift: int
) -> None:
    digits = f"{first7:07d}"
    ico = digits + str(ico_check_digit(digits))
    typo = ico[:position] + str((int(ico[position]) + shift) % 10) + ico[position + 1 :]

    def residue(code: str) -> int:
        return sum(int(d) * w for d, w in zip(code[:7], range(8, 1, -1), strict=True)) % 11

    # mod-11 catches every single-digit change, except the one blind spot of the IČO rule:
    # residues 0 and 10 share check digit 1
    blind = position < 7 and {residue(ico), residue(typo)} == {0, 10}
    if not blind:
        with pytest.raises(nz.InvalidValue):
            nz.normalize_ico(typo)


def test_ico_problems_are_named() -> None:
    with pytest.raises(nz.InvalidValue) as err:
        nz.normalize_ico("25596642")
    assert err.value.problem == "ico_checksum"
    with pytest.raises(nz.InvalidValue) as err:
        nz.normalize_ico("123456789")
    assert err.value.problem == "ico_length"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CZ25596641", "CZ25596641"),
        ("cz 255 96 641", "CZ25596641"),
        ("DIČ: CZ25596641", "CZ25596641"),
        ("25596641", "CZ25596641"),
        ("SK2020317068", "SK2020317068"),
        ("DE 136 695 976", "DE136695976"),
    ],
)
def test_vat_ids(raw: str, expected: str) -> None:
    assert nz.normalize_vat(raw) == expected


def test_invalid_vat_is_named() -> None:
    with pytest.raises(nz.InvalidValue) as err:
        nz.normalize_vat("CZ25596642")
    assert err.value.problem == "vat_invalid"


def test_czech_account_number_becomes_iban() -> None:
    assert nz.account_to_iban("19-2000145399/0800") == "CZ6508000000192000145399"
    assert nz.normalize_iban("CZ65 0800 0000 1920 0014 5399") == "CZ6508000000192000145399"
    assert nz.normalize_iban("19-2000145399/0800") == "CZ6508000000192000145399"
    assert nz.format_iban("CZ6508000000192000145399") == "CZ65 0800 0000 1920 0014 5399"
    with pytest.raises(nz.InvalidValue) as err:
        nz.account_to_iban("19-2000145398/0800")
    assert err.value.problem == "account_checksum"


@given(st.integers(min_value=1, max_value=10**10 - 1), st.sampled_from(["0100", "0800", "2010"]))
def test_valid_accounts_give_valid_ibans(number: int, bank: str) -> None:
    digits = f"{number:010d}"
    weights = (6, 3, 7, 9, 10, 5, 8, 4, 2, 1)
    if sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11:
        return
    iban = nz.account_to_iban(f"{number}/{bank}")
    assert nz.normalize_iban(iban) == iban
    assert iban.startswith("CZ") and iban[4:8] == bank


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("601 123 456", "+420601123456"),
        ("+420 601 123 456", "+420601123456"),
        ("00420601123456", "+420601123456"),
        ("0902 123 456", "+421902123456"),
        ("+421 902 123 456", "+421902123456"),
    ],
)
def test_phones_default_to_cz_then_sk(raw: str, expected: str) -> None:
    assert nz.normalize_phone(raw) == expected


@given(st.integers(min_value=0, max_value=999_999))
def test_phone_formatting_does_not_matter(tail: int) -> None:
    digits = f"601{tail:06d}"
    spaced = f"+420 {digits[:3]} {digits[3:6]} {digits[6:]}"
    assert (
        nz.normalize_phone(digits)
        == nz.normalize_phone(spaced)
        == nz.normalize_phone("00420" + digits)
    )


def test_email_and_domain() -> None:
    assert nz.normalize_email(" <Jan.Novak@Firma.CZ> ") == "jan.novak@firma.cz"
    assert nz.normalize_email("mailto:info@příklad.cz") == "info@xn--pklad-zsa96e.cz"
    assert nz.normalize_domain("https://WWW.Acme.cz/kontakt?x=1") == "acme.cz"
    assert nz.normalize_domain("obchod@acme.sk") == "acme.sk"
    with pytest.raises(nz.InvalidValue):
        nz.normalize_email("jan.novak@")


def test_czech_address_with_house_numbers_and_city_part() -> None:
    address = nz.normalize_address(line="Vinohradská 1511/230, 100 00 Praha 10 - Strašnice")
    assert address.street == "Vinohradská"
    assert (address.house_number, address.orientation_number) == ("1511", "230")
    assert (address.zip, address.city, address.city_part) == ("100 00", "Praha 10", "Strašnice")
    assert address.country == "CZ"
    assert address.one_line() == "Vinohradská 1511/230, 100 00 Praha 10 - Strašnice"


def test_slovak_address_and_village_without_street() -> None:
    sk = nz.normalize_address(street="Hlavná 5", zip="81101", city="Bratislava")
    assert (sk.street, sk.house_number, sk.zip, sk.country) == ("Hlavná", "5", "811 01", "SK")
    village = nz.normalize_address(street="č.p. 12", zip="569 43", city="Jevíčko")
    assert (village.street, village.house_number) == (None, "12")
    assert nz.normalize_address(street="Nádražní 12/4a").orientation_number == "4a"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1. 2. 2024", date(2024, 2, 1)),
        ("01.02.2024", date(2024, 2, 1)),
        ("2024-02-01", date(2024, 2, 1)),
        ("20240201", date(2024, 2, 1)),
        ("1.2.85", date(1985, 2, 1)),
    ],
)
def test_dates(raw: str, expected: date) -> None:
    assert nz.normalize_date(raw) == expected


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_any_date_in_czech_or_iso_form_round_trips(day: date) -> None:
    assert nz.normalize_date(f"{day.day}. {day.month}. {day.year}") == day
    assert nz.normalize_date(day.isoformat()) == day


@pytest.mark.parametrize(
    ("raw", "amount", "currency"),
    [
        ("1 234,50 Kč", Decimal("1234.50"), "CZK"),
        ("€1,234.50", Decimal("1234.50"), "EUR"),
        ("2.500,- CZK", Decimal("2500"), "CZK"),
        ("12,5", Decimal("12.5"), None),
        ("-300 EUR", Decimal("-300"), "EUR"),
    ],
)
def test_amounts(raw: str, amount: Decimal, currency: str | None) -> None:
    money = nz.normalize_amount(raw)
    assert (money.amount, money.currency) == (amount, currency)


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
def test_czech_written_amounts_round_trip(value: Decimal) -> None:
    whole, _, cents = f"{value:.2f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", " ")
    assert nz.normalize_amount(f"{grouped},{cents} Kč").amount == value


def test_person_names_lose_titles() -> None:
    assert nz.normalize_person_name("Ing. Jan Novák, Ph.D.") == "Jan Novák"
    assert nz.normalize_person_name("MUDr.  Eva   Svobodová") == "Eva Svobodová"
