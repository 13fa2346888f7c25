"""Normalisers: turn what people type into one comparable form.

Every function here is pure. A value that cannot be made valid raises ``InvalidValue``
(a ``ValidationError``) naming the problem, so validation can collect problems by code.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import phonenumbers
from stdnum import iban as std_iban
from stdnum.eu import vat as std_vat

from spojka.core.errors import ValidationError
from spojka.model.identifiers import is_valid_ico


class InvalidValue(ValidationError):
    """A value that no normalisation can turn into a valid one."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message, detail={"problem": problem})
        self.problem = problem


# --------------------------------------------------------------------------- text


def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# letters NFKD cannot decompose but people do write
_EXTRA_FOLD = {"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D"}
# one translate() call folds every Latin-1 / Latin Extended-A letter (all of cs, sk, de, pl, hu)
_FOLD_TABLE = {cp: _fold_char(chr(cp)) for cp in range(0xC0, 0x180)}
_FOLD_TABLE.update({ord(k): v for k, v in _EXTRA_FOLD.items()})


def fold(text: str) -> str:
    """Lower-case, no diacritics, single spaces: ``Žluťoučký  Kůň`` → ``zlutoucky kun``."""
    stripped = text.translate(_FOLD_TABLE)
    if not stripped.isascii():
        stripped = "".join(_fold_char(ch) for ch in stripped)
    return " ".join(stripped.lower().split())


def clean_text(text: str) -> str:
    """Trim, collapse whitespace, drop control characters; keep case and diacritics."""
    text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())


# --------------------------------------------------------------------------- company names

# (canonical legal form, regex over the folded name with dots/commas turned into spaces)
_LEGAL_FORM_PATTERNS: list[tuple[str, str]] = [
    ("GmbH & Co. KG", r"gmbh\s*(?:&|und|a)\s*co\s*kg"),
    ("s.r.o.", r"spol(?:ecnost|ocnost)?\s+s\s+r(?:uc(?:enim)?)?\s*o(?:mezenym|bmedzenym)?"),
    ("s.r.o.", r"spolecnost\s+s\s+rucenim\s+omezenym|spolocnost\s+s\s+rucenim\s+obmedzenym"),
    ("s.r.o.", r"s\s*r\s*o"),
    ("a.s.", r"akciova\s+spole[cč]nost|akciova\s+spolocnost|a\s+s"),
    ("k.s.", r"komanditni\s+spolecnost|komanditna\s+spolocnost|k\s+s"),
    ("v.o.s.", r"verejna\s+obchodni\s+spolecnost|verejna\s+obchodna\s+spolocnost|v\s*o\s*s"),
    ("j.s.a.", r"jednoducha\s+spolocnost\s+na\s+akcie|j\s*s\s*a"),
    ("s.p.", r"statni\s+podnik|statny\s+podnik|s\s+p"),
    ("z.s.", r"zapsany\s+spolek|z\s+s"),
    ("z.ú.", r"zapsany\s+ustav|z\s+u"),
    ("o.p.s.", r"obecne\s+prospesna\s+spolecnost|o\s*p\s*s"),
    ("družstvo", r"druzstvo"),
    ("GmbH", r"gmbh|gesellschaft\s+mit\s+beschrankter\s+haftung"),
    ("AG", r"ag|aktiengesellschaft"),
    ("KG", r"kg|kommanditgesellschaft"),
    ("OHG", r"ohg"),
    ("SE", r"se"),
    ("Ltd", r"ltd|limited"),
    ("LLC", r"llc"),
    ("Inc", r"inc|incorporated"),
    ("plc", r"plc"),
    ("Corp", r"corp|corporation"),
]
_LEGAL_FORM_RES = [
    (code, re.compile(r"(?<!\S)(?:" + pattern + r")(?!\S)"))
    for code, pattern in _LEGAL_FORM_PATTERNS
]
#: words that say a record is a branch / establishment of a company rather than its seat
BRANCH_WORDS = frozenset(
    {
        "pobocka",
        "provozovna",
        "prevadzka",
        "zavod",
        "filiala",
        "branch",
        "niederlassung",
        "odstepny",
        "organizacni",
        "organizacna",
        "slozka",
        "zlozka",
    }
)
_NOISE_WORDS = frozenset({"spol", "v", "likvidaci", "likvidacii", "the"})


@dataclass(frozen=True, slots=True)
class CompanyName:
    """A company name in display form, its matching key and its legal form (if any)."""

    display: str
    key: str
    legal_form: str | None
    is_branch: bool


_PUNCT = re.compile(r"[.,;:()\"'`/\\|_+*!?-]")


def _punct_to_space(folded: str) -> str:
    folded = folded.replace("&", " & ")
    return " ".join(_PUNCT.sub(" ", folded).split())


#: every legal form starts with one of these letters: the lookahead skips other words fast
_LEGAL_FIRST_LETTERS = "acdgijklopsvz"
_LEGAL_ANY = re.compile(
    r"(?<!\S)(?=["
    + _LEGAL_FIRST_LETTERS
    + r"])(?:"
    + "|".join(f"(?P<f{i}>{pattern})" for i, (_, pattern) in enumerate(_LEGAL_FORM_PATTERNS))
    + r")(?!\S)"
)


@lru_cache(maxsize=65536)
def company_name_key(raw: str) -> tuple[str, str | None, bool]:
    """The matching key, legal form and branch flag of a company name (cached: names repeat)."""
    spaced = _punct_to_space(fold(raw))
    legal_form: str | None = None
    key = spaced
    # the earliest qualifying legal form wins; short ambiguous forms ("a s", "se", "ag")
    # only count at the very end, and a name never *is* its legal form
    for match in _LEGAL_ANY.finditer(spaced):
        start, end = match.start(), match.end()
        if start == 0 or (end - start <= 3 and end != len(spaced)):
            continue
        legal_form = _LEGAL_FORM_PATTERNS[int((match.lastgroup or "f0")[1:])][0]
        key = (spaced[:start] + " " + spaced[end:]).strip()
        break
    words = [w for w in key.replace("&", " a ").split() if w not in _NOISE_WORDS]
    is_branch = any(w in BRANCH_WORDS for w in words)
    return (" ".join(words) or spaced), legal_form, is_branch


def normalize_company_name(raw: str) -> CompanyName:
    """Split a company name into key and legal form.

    ``ACME, spol. s r.o.`` → key ``acme``, legal form ``s.r.o.``.
    """
    display = clean_text(raw)
    if not display:
        raise InvalidValue("name_missing", "company name is empty")
    key, legal_form, is_branch = company_name_key(display)
    if legal_form is not None:
        display = _canonical_display(display, legal_form)
    return CompanyName(display=display, key=key, legal_form=legal_form, is_branch=is_branch)


def _canonical_display(display: str, legal_form: str) -> str:
    """Replace the written legal form at the end of the display name with its canonical one."""
    tokens = display.split()
    # drop trailing tokens that fold into the legal form (up to 6 words: "spol. s r. o.")
    for cut in range(min(6, len(tokens) - 1), 0, -1):
        tail = _punct_to_space(fold(" ".join(tokens[-cut:])))
        for code, regex in _LEGAL_FORM_RES:
            if code == legal_form and regex.fullmatch(tail):
                head = " ".join(tokens[:-cut]).rstrip(" ,")
                return f"{head} {legal_form}"
    return display


# --------------------------------------------------------------------------- identifiers


_ICO_NOISE = re.compile(r"(?i)^\s*i[čc]o?\s*:?|\s")


@lru_cache(maxsize=16384)
def normalize_ico(raw: str) -> str:
    """IČO as 8 digits with a valid mod-11 check digit (leading zeros restored)."""
    digits = raw if raw.isascii() and raw.isdigit() else _ICO_NOISE.sub("", raw)
    if not digits.isdigit():
        raise InvalidValue("ico_format", f"IČO {raw!r} must contain digits only")
    if len(digits) > 8:
        raise InvalidValue("ico_length", f"IČO {raw!r} has more than 8 digits")
    digits = digits.zfill(8)
    if not is_valid_ico(digits):
        raise InvalidValue("ico_checksum", f"IČO {digits} has a wrong check digit")
    return digits


_VAT_SEPARATORS = re.compile(r"[\s.\-/]")
_VAT_LABEL = re.compile(r"^(DI[ČC]|I[ČC]DPH|VAT|UID)?:?")


def normalize_vat(raw: str, *, default_country: str = "CZ") -> str:
    """DIČ / IČ DPH / EU VAT id, compact, with country: ``CZ 255 96 641`` → ``CZ25596641``."""
    compact = _VAT_SEPARATORS.sub("", raw).upper()
    compact = _VAT_LABEL.sub("", compact)
    if not compact:
        raise InvalidValue("vat_missing", "VAT id is empty")
    if compact[:2].isdigit():
        compact = default_country.upper() + compact
    if compact.startswith("GR"):
        compact = "EL" + compact[2:]
    # a legal person's DIČ is CZ + IČO: the IČO check is the whole validation
    if len(compact) == 10 and compact.startswith("CZ") and is_valid_ico(compact[2:]):
        return compact
    if _is_plain_sk_ic_dph(compact):
        return compact
    return _validate_vat(compact, raw)


def _is_plain_sk_ic_dph(compact: str) -> bool:
    """SK + 10 digits passing the IČ DPH rule (no leading 0, 3rd digit 2/3/4/7/8/9, mod 11).

    python-stdnum accepts these too (after trying the number as a rodné číslo first); checking
    the common case here skips that slower path. Anything else goes to python-stdnum.
    """
    digits = compact[2:]
    return (
        len(compact) == 12
        and compact.startswith("SK")
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
        and digits[2] in "234789"
        and int(digits) % 11 == 0
    )


@lru_cache(maxsize=16384)
def _validate_vat(compact: str, raw: str) -> str:
    try:
        return str(std_vat.validate(compact))
    except Exception as exc:  # stdnum raises its own ValidationError family
        raise InvalidValue("vat_invalid", f"VAT id {raw!r} is not valid ({exc})") from None


def _weighted_mod11(digits: str, weights: tuple[int, ...]) -> bool:
    padded = digits.zfill(len(weights))
    return sum(int(d) * w for d, w in zip(padded, weights, strict=True)) % 11 == 0


_PREFIX_WEIGHTS = (10, 5, 8, 4, 2, 1)
_NUMBER_WEIGHTS = (6, 3, 7, 9, 10, 5, 8, 4, 2, 1)
_ACCOUNT = re.compile(r"^(?:(\d{1,6})-)?(\d{2,10})/(\d{4})$")


def account_to_iban(raw: str, *, country: str = "CZ") -> str:
    """Czech/Slovak domestic account ``19-2000145399/0800`` → IBAN ``CZ6508000000192000145399``."""
    text = re.sub(r"\s", "", raw)
    match = _ACCOUNT.match(text)
    if not match:
        raise InvalidValue("account_format", f"account {raw!r} is not [prefix-]number/bank")
    prefix, number, bank = match.group(1) or "", match.group(2), match.group(3)
    if prefix and not _weighted_mod11(prefix, _PREFIX_WEIGHTS):
        raise InvalidValue("account_checksum", f"account prefix {prefix} fails the mod-11 check")
    if not _weighted_mod11(number, _NUMBER_WEIGHTS):
        raise InvalidValue("account_checksum", f"account number {number} fails the mod-11 check")
    bban = bank + prefix.zfill(6) + number.zfill(10)
    return _iban_from_bban(country.upper(), bban)


def _iban_from_bban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    check = 98 - int(numeric) % 97
    return f"{country}{check:02d}{bban}"


def normalize_iban(raw: str, *, country: str = "CZ") -> str:
    """IBAN in compact form; a domestic CZ/SK account number is converted to its IBAN."""
    text = re.sub(r"\s", "", raw).upper()
    if "/" in text:
        return account_to_iban(text, country=country)
    try:
        return str(std_iban.validate(text))
    except Exception as exc:
        raise InvalidValue("iban_invalid", f"IBAN {raw!r} is not valid ({exc})") from None


def format_iban(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


# --------------------------------------------------------------------------- contact channels


def normalize_phone(raw: str, *, regions: tuple[str, ...] = ("CZ", "SK")) -> str:
    """Phone number in E.164 (``+420601123456``); national numbers tried for CZ, then SK."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    last_error = "not a phone number"
    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            last_error = str(exc)
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        last_error = "no such number in the numbering plan"
    raise InvalidValue("phone_invalid", f"phone {raw!r} is not valid ({last_error})")


def phone_match_key(raw: str) -> str | None:
    """The last 9 digits of a phone number: equal for every way of writing one CZ/SK number.

    Cheaper than full parsing and good enough to compare; ``normalize_phone`` validates.
    """
    if raw.isascii():
        digits = raw.translate(_KEEP_ASCII_DIGITS)
    else:
        digits = "".join(ch for ch in raw if ch.isdigit())
    return digits[-9:] if len(digits) >= 9 else None


#: str.translate table deleting every ASCII character but the digits
_KEEP_ASCII_DIGITS = {cp: None for cp in range(128) if not chr(cp).isdigit()}


_EMAIL_RE = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@([a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}$"
)
#: mailbox providers whose domain says nothing about the company
FREEMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "seznam.cz",
        "email.cz",
        "post.cz",
        "centrum.cz",
        "atlas.cz",
        "volny.cz",
        "tiscali.cz",
        "azet.sk",
        "zoznam.sk",
        "centrum.sk",
        "post.sk",
        "outlook.com",
        "hotmail.com",
        "yahoo.com",
        "icloud.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
    }
)


_MAILTO = re.compile(r"(?i)^mailto:")


def normalize_email(raw: str) -> str:
    """Lower-case address without ``mailto:`` and surrounding brackets."""
    text = raw.strip().strip("<>").strip()
    text = _MAILTO.sub("", text).lower()
    if "@" in text:
        local, _, host = text.rpartition("@")
        try:
            # only internationalised domains need the (slow) IDNA codec
            host = host if host.isascii() else host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidValue("email_invalid", f"e-mail {raw!r} has an invalid domain") from None
        text = f"{local}@{host}"
    if not _EMAIL_RE.match(text) or ".." in text:
        raise InvalidValue("email_invalid", f"e-mail {raw!r} is not a valid address")
    return text


_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def normalize_domain(raw: str) -> str:
    """Host of a web address or e-mail, lower-case, no ``www.``: ``WWW.Acme.cz/x`` → ``acme.cz``."""
    text = raw.strip().lower()
    if "@" in text and "://" not in text:
        text = text.rpartition("@")[2]
    text = _URL_SCHEME.sub("", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    text = text.removeprefix("www.")
    try:
        text = text if text.isascii() else text.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidValue("domain_invalid", f"domain {raw!r} is not a valid host name") from None
    if not _DOMAIN_RE.match(text):
        raise InvalidValue("domain_invalid", f"domain {raw!r} is not a valid host name")
    return text


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """A Czech/Slovak postal address split into its parts."""

    street: str | None
    house_number: str | None  # číslo popisné (č.p.) or the only number given
    orientation_number: str | None  # číslo orientační (č.o.), may carry a letter: 12a
    zip: str | None  # PSČ as "110 00"
    city: str | None
    city_part: str | None
    country: str

    def one_line(self) -> str:
        number = self.house_number or ""
        if self.orientation_number:
            number = f"{number}/{self.orientation_number}" if number else self.orientation_number
        street = " ".join(p for p in (self.street, number) if p)
        city = " ".join(p for p in (self.zip, self.city) if p)
        if self.city_part and self.city_part != self.city:
            city = f"{city} - {self.city_part}"
        return ", ".join(p for p in (street, city) if p)


def normalize_psc(raw: str) -> str:
    """PSČ as ``NNN NN``."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) != 5:
        raise InvalidValue("zip_invalid", f"PSČ {raw!r} must have 5 digits")
    return f"{digits[:3]} {digits[3:]}"


def psc_country(psc: str) -> str | None:
    """CZ PSČ start with 1-7, SK with 0, 8 or 9."""
    first = psc[:1]
    if first in "1234567" and first:
        return "CZ"
    if first in "089" and first:
        return "SK"
    return None


_NUMBER_PART = re.compile(
    r"(?i)(?:č\.?\s*p\.?|c\.?\s*p\.?|čp|cp)?\s*(\d{1,5})(?:\s*/\s*(\d{1,4}\s?[a-zA-Z]?))?\s*$"
)
_ZIP_CITY = re.compile(r"^(?:(?:CZ|SK)[\s-]?)?(\d{3}\s?\d{2})\s+(.+)$")


_BARE_CP = re.compile(r"(?i)č\.?\s*p\.?|c\.?\s*p\.?")


def split_street(street: str) -> tuple[str | None, str | None, str | None]:
    """``Vinohradská 1511/230`` → (``Vinohradská``, č.p. ``1511``, č.o. ``230``)."""
    street_name: str | None
    house: str | None = None
    orientation: str | None = None
    text = clean_text(street)
    m = _NUMBER_PART.search(text)
    if (m and m.start() > 0) or (m and text[: m.start()].strip() == ""):
        first, second = m.group(1), m.group(2)
        house = first
        orientation = second.replace(" ", "").lower() if second else None
        street_name = text[: m.start()].strip(" ,") or None
    else:
        street_name = text
    # "č.p." written before a bare number in villages without streets
    if street_name and _BARE_CP.fullmatch(street_name):
        street_name = None
    return street_name, house, orientation


def normalize_address(
    *,
    street: str | None = None,
    city: str | None = None,
    zip: str | None = None,
    country: str | None = None,
    line: str | None = None,
) -> PostalAddress:
    """Parse a CZ/SK address given as parts or as one line.

    ``Vinohradská 1511/230, 100 00 Praha 10`` → street, č.p. 1511, č.o. 230, PSČ, city.
    """
    if line and not (street or city or zip):
        parts = [p.strip() for p in re.split(r",|\n", line) if p.strip()]
        for part in list(parts):
            m = _ZIP_CITY.match(part)
            if m and zip is None:
                zip, city = m.group(1), m.group(2)
                parts.remove(part)
        if parts:
            street = parts[0]
            if city is None and len(parts) > 1:
                city = parts[-1]
    street_name, house, orientation = split_street(street) if street else (None, None, None)
    psc = normalize_psc(zip) if zip and zip.strip() else None
    city_name: str | None = None
    city_part: str | None = None
    if city:
        text = clean_text(city)
        text = re.sub(r"^\d{3}\s?\d{2}\s+", "", text)
        if " - " in text or " – " in text:
            city_name, city_part = (p.strip() for p in re.split(r"\s[-–]\s", text, maxsplit=1))
        else:
            city_name = text
    resolved_country = (country or "").strip().upper()[:2] or (psc_country(psc) if psc else None)
    resolved_country = {"CE": "CZ", "SL": "SK"}.get(resolved_country or "", resolved_country)
    return PostalAddress(
        street=street_name,
        house_number=house,
        orientation_number=orientation,
        zip=psc,
        city=city_name,
        city_part=city_part,
        country=resolved_country or "CZ",
    )


# --------------------------------------------------------------------------- dates, money

_DMY = re.compile(r"^(\d{1,2})\s*[./-]\s*(\d{1,2})\s*[./-]\s*(\d{2}|\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def normalize_date(raw: str) -> date:
    """A date written the Czech/Slovak way (``1. 2. 2024``), ISO, or ``YYYYMMDD``."""
    text = raw.strip().rstrip(".")
    try:
        if m := _ISO.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if m := _COMPACT.match(text):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if m := _DMY.match(text):
            year = int(m.group(3))
            if year < 100:  # two-digit years: 00-30 → 2000s, the rest → 1900s
                year += 2000 if year <= 30 else 1900
            return date(year, int(m.group(2)), int(m.group(1)))
    except ValueError:
        raise InvalidValue("date_invalid", f"date {raw!r} does not exist") from None
    raise InvalidValue("date_format", f"date {raw!r} is not in a known format")


_CURRENCY_SIGNS = {
    "kč": "CZK",
    "kc": "CZK",
    "czk": "CZK",
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "$": "USD",
    "usd": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "chf": "CHF",
    "pln": "PLN",
    "zł": "PLN",
    "huf": "HUF",
    "ft": "HUF",
}


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str | None


def normalize_amount(raw: str, *, default_currency: str | None = None) -> Money:
    """``1 234,50 Kč`` → 1234.50 CZK; ``€1,234.50`` → 1234.50 EUR; ``2.500,- CZK`` → 2500."""
    text = raw.strip().replace("\u00a0", " ").replace("\u202f", " ")
    currency = default_currency
    lowered = text.lower()
    for sign, code in sorted(_CURRENCY_SIGNS.items(), key=lambda kv: -len(kv[0])):
        if lowered.startswith(sign) or lowered.endswith(sign):
            currency = code
            text = (text[len(sign) :] if lowered.startswith(sign) else text[: -len(sign)]).strip()
            break
    text = text.replace(" ", "").replace("'", "")
    text = re.sub(r",-+$|\.-+$", "", text)
    negative = text.startswith("-") or (text.startswith("(") and text.endswith(")"))
    text = text.strip("-()+")
    if not re.fullmatch(r"[\d.,]+", text or "x"):
        raise InvalidValue("amount_format", f"amount {raw!r} is not a number")
    if "," in text and "." in text:
        # the later separator is the decimal one
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = head.replace(",", "") + "." + tail if len(tail) != 3 or "," in head else head + tail
    elif text.count(".") > 1:
        text = text.replace(".", "")
    elif "." in text and len(text.rpartition(".")[2]) == 3 and len(text) > 4:
        text = text.replace(".", "")  # 1.234 is a thousands separator in CZ/SK writing
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidValue("amount_format", f"amount {raw!r} is not a number") from None
    return Money(amount=-amount if negative else amount, currency=currency)


# --------------------------------------------------------------------------- persons


def normalize_person_name(raw: str) -> str:
    """A personal name with titles removed: ``Ing. Jan Novák, Ph.D.`` → ``Jan Novák``."""
    text = clean_text(raw)
    text = re.sub(
        r"(?i)\b(ing|mgr|bc|judr|mudr|phdr|rndr|doc|prof|dr|ph\.?d|csc|mba|dipl)\.?(?=\s|,|$)",
        " ",
        text,
    )
    text = " ".join(re.sub(r"[,]", " ", text).split())
    if not text:
        raise InvalidValue("name_missing", "person name is empty")
    return text
