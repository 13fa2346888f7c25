"""Value parsers for printed invoices: amounts, dates, identifiers in cs/sk/en/de notation."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

from stdnum import iban as stdnum_iban

_SPACES = "\u00a0\u202f\u2009 "
# 12 345,67 · 12.345,67 · 12,345.67 · 12345.67 · -1 200 · 1'234.50
_AMOUNT_RE = re.compile(
    r"(?<![\w.,])[-−]?\d{1,3}(?:[ \u00a0\u202f\u2009.,']\d{3})*(?:[.,]\d{1,2})?(?![\w]|[.,]\d)"
    r"|(?<![\w.,])[-−]?\d+(?:[.,]\d{1,2})?(?![\w]|[.,]\d)"
)
_MONTHS = {
    # en
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
    # de
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "mai": 5, "juni": 6,
    "juli": 7, "oktober": 10, "dezember": 12,
}  # fmt: skip
# ":" and "," too: OCR reads the dots of "13. 9. 2025" as either
_DATE_NUMERIC = re.compile(r"(?<!\d)(\d{1,2})\s*[./\-:,]\s*(\d{1,2})\s*[./\-:,]\s*(\d{4})(?!\d)")
_DATE_SHORT_YEAR = re.compile(r"(?<![\d.])(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{2})(?![\d.])")
_DATE_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_DATE_WORDS = re.compile(r"(?<!\w)(\d{1,2})\.?\s+([A-Za-zäÄ]+)\.?\s+(\d{4})(?!\d)")
_DATE_WORDS_US = re.compile(r"(?<!\w)([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})(?!\d)")
_IBAN_RE = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?)\b")
_CURRENCIES = {
    "kč": "CZK",
    "kc": "CZK",
    "czk": "CZK",
    "eur": "EUR",
    "€": "EUR",
    "usd": "USD",
    "$": "USD",
    "gbp": "GBP",
    "£": "GBP",
    "chf": "CHF",
    "pln": "PLN",
    "huf": "HUF",
}
_CURRENCY_RE = re.compile(r"(?<![A-Za-z])(Kč|Kc|CZK|EUR|€|USD|GBP|£|CHF|PLN|HUF)(?![A-Za-z])")


def fold(text: str) -> str:
    """Lower case without diacritics, one space: the form labels are compared in."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().split())


def fold_keep_length(text: str) -> str:
    """Like fold() but one output character per input character, so match positions map back
    onto the original text (which keeps its case for invoice numbers and names)."""
    out = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base.lower()[:1] if base else ch.lower()[:1] or " ")
    return "".join(out)


def parse_amount(text: str) -> Decimal | None:
    """A printed amount → Decimal; decides the decimal mark by position (12.345,67 / 12,345.67)."""
    raw = text.strip().replace("−", "-")
    for ch in _SPACES + "'":
        raw = raw.replace(ch, "")
    if not raw or not re.fullmatch(r"-?[\d.,]+", raw):
        return None
    last_dot, last_comma = raw.rfind("."), raw.rfind(",")
    mark = max(last_dot, last_comma)
    if mark >= 0 and len(raw) - mark - 1 in (1, 2):
        integer, frac = raw[:mark], raw[mark + 1 :]
        integer = integer.replace(".", "").replace(",", "")
        raw = f"{integer}.{frac}"
    elif mark >= 0 and len(raw) - mark - 1 == 3:
        # 1.234 or 1,234: thousands separators, never three decimals on an invoice total
        raw = raw.replace(".", "").replace(",", "")
    else:
        raw = raw.replace(",", "")
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def find_amounts(text: str) -> list[tuple[Decimal, int, int]]:
    """All amounts in a text with their character spans."""
    found = []
    for m in _AMOUNT_RE.finditer(text):
        value = parse_amount(m.group(0))
        if value is not None:
            found.append((value, m.start(), m.end()))
    return found


def parse_date(text: str) -> date | None:
    """The first date in a text: 15.03.2025, 15. 3. 2025, 2025-03-15, 15 March 2025, March 15, 2025."""  # noqa: E501
    candidates: list[tuple[int, date]] = []
    for m in _DATE_ISO.finditer(text):
        d = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if d:
            candidates.append((m.start(), d))
    for m in _DATE_NUMERIC.finditer(text):
        d = _safe_date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        if d:
            candidates.append((m.start(), d))
    for m in _DATE_SHORT_YEAR.finditer(text):
        d = _safe_date(2000 + int(m.group(3)), int(m.group(2)), int(m.group(1)))
        if d:
            candidates.append((m.start(), d))
    for m in _DATE_WORDS.finditer(text):
        month = _MONTHS.get(m.group(2).lower())
        if month:
            d = _safe_date(int(m.group(3)), month, int(m.group(1)))
            if d:
                candidates.append((m.start(), d))
    for m in _DATE_WORDS_US.finditer(text):
        month = _MONTHS.get(m.group(1).lower())
        if month:
            d = _safe_date(int(m.group(3)), month, int(m.group(2)))
            if d:
                candidates.append((m.start(), d))
    return min(candidates)[1] if candidates else None


def _safe_date(y: int, m: int, d: int) -> date | None:
    if not 1990 <= y <= 2100:
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


def find_iban(text: str) -> str | None:
    """The first IBAN with a valid checksum, compact."""
    for m in _IBAN_RE.finditer(text.upper()):
        candidate = m.group(1).replace(" ", "")
        # the regex may run into a following word; shorten until the checksum holds
        for end in range(len(candidate), 14, -1):
            if stdnum_iban.is_valid(candidate[:end]):
                return candidate[:end]
    return None


_CZ_ACCOUNT_RE = re.compile(r"(?<![\w/-])(?:(\d{1,6})-)?(\d{2,10})\s*/\s*(\d{4})(?![\w/])")


def cz_account_to_iban(text: str) -> str | None:
    """A Czech domestic account (prefix-number/bank, both check digits valid) as its IBAN;
    the conversion is fixed by the CNB standard, so nothing is guessed."""
    from stdnum.cz import bankaccount

    m = _CZ_ACCOUNT_RE.search(text)
    if not m:
        return None
    prefix, number, bank = m.group(1) or "0", m.group(2), m.group(3)
    if not bankaccount.is_valid(f"{prefix}-{number}/{bank}" if m.group(1) else f"{number}/{bank}"):
        return None
    bban = f"{bank}{int(prefix):06d}{int(number):010d}"
    digits = "".join(str(int(ch, 36)) for ch in bban + "CZ00")
    iban = f"CZ{98 - int(digits) % 97:02d}{bban}"
    return iban if stdnum_iban.is_valid(iban) else None


def find_currency(text: str) -> str | None:
    m = _CURRENCY_RE.search(text)
    return _CURRENCIES[m.group(1).lower()] if m else None


def currency_code(token: str) -> str | None:
    return _CURRENCIES.get(token.strip().lower())


def count_currencies(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in _CURRENCY_RE.finditer(text):
        code = _CURRENCIES[m.group(1).lower()]
        counts[code] = counts.get(code, 0) + 1
    return counts


def find_rate(text: str) -> Decimal | None:
    """A VAT rate printed as '21 %', '21%' or '21,0 %'."""
    m = re.search(r"(?<![\d,.])(\d{1,2}(?:[.,]\d{1,2})?)\s*%", text)
    if not m:
        return None
    value = parse_amount(m.group(1))
    return plain_rate(value) if value is not None else None


def plain_rate(value: Decimal) -> Decimal:
    """21.00 → 21, 10.5 stays 10.5 (never the 2E+1 that Decimal.normalize gives)."""
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()


def clean_identifier(text: str) -> str:
    return re.sub(r"[\s\u00a0]", "", text).strip(".,;:")


def decimal_or_none(value: str | None) -> Decimal | None:
    if value is None or not value.strip():
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        return None
