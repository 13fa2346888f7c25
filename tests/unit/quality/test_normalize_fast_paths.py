"""Shortcuts in the normalisers give what the general path gives."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from stdnum.eu import vat as std_vat

from spojka.quality import normalize as nz


@given(st.integers(min_value=0, max_value=9_999_999_999))
def test_the_sk_ic_dph_shortcut_agrees_with_python_stdnum(number: int) -> None:
    compact = f"SK{number:010d}"
    if nz._is_plain_sk_ic_dph(compact):
        assert std_vat.validate(compact) == compact
    for candidate in (compact, f"SK{number:010d}"[:-1] + "x"):
        try:
            expected: str | None = str(std_vat.validate(candidate))
        except Exception:
            expected = None
        try:
            got: str | None = nz.normalize_vat(candidate)
        except nz.InvalidValue:
            got = None
        assert got == expected


def test_a_valid_sk_ic_dph_is_accepted_and_a_wrong_one_is_not() -> None:
    assert nz.normalize_vat("SK 2020 2733 54") == "SK2020273354"
    assert nz._is_plain_sk_ic_dph("SK2020273354")
    assert not nz._is_plain_sk_ic_dph("SK2020273355")


@given(st.text(alphabet="0123456789 +-()/.x٦٠١²", max_size=24))
def test_phone_key_counts_the_same_digits_on_both_paths(raw: str) -> None:
    digits = "".join(ch for ch in raw if ch.isdigit())
    assert nz.phone_match_key(raw) == (digits[-9:] if len(digits) >= 9 else None)


@given(st.text(alphabet="0123456789 IiČčCcOo:", max_size=14))
def test_ico_shortcut_for_plain_digits_changes_nothing(raw: str) -> None:
    def general(value: str) -> str | None:
        digits = re.sub(r"(?i)^\s*i[čc]o?\s*:?|\s", "", value)
        if not digits.isdigit() or len(digits) > 8:
            return None
        digits = digits.zfill(8)
        return digits if nz.is_valid_ico(digits) else None

    try:
        got: str | None = nz.normalize_ico(raw)
    except nz.InvalidValue:
        got = None
    assert got == general(raw)


@given(st.text(max_size=20))
def test_clean_text_shortcut_for_printable_text_changes_nothing(raw: str) -> None:
    import unicodedata

    text = unicodedata.normalize("NFC", raw)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    assert nz.clean_text(raw) == " ".join(text.split())


def _first_letters(pattern: str) -> set[str]:
    """First letters of the top-level alternatives of a legal-form pattern."""
    alternatives, depth, start = [], 0, 0
    for n, ch in enumerate(pattern):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            alternatives.append(pattern[start:n])
            start = n + 1
    alternatives.append(pattern[start:])
    return {alternative[0] for alternative in alternatives}


def test_every_legal_form_starts_with_a_letter_the_lookahead_lets_through() -> None:
    for _, pattern in nz._LEGAL_FORM_PATTERNS:
        assert _first_letters(pattern) <= set(nz._LEGAL_FIRST_LETTERS), pattern


def test_split_street_is_what_normalize_address_reports() -> None:
    for raw in ["Vinohradská 1511/230", "č.p. 12", "Dlouhá 12a", "Náměstí Míru", "Lhota 5/3 B"]:
        address = nz.normalize_address(street=raw)
        assert nz.split_street(raw) == (
            address.street,
            address.house_number,
            address.orientation_number,
        )
