"""Czech/Slovak business identifiers: pure checks used by the canonical contracts."""

from __future__ import annotations

import re

_DIC = re.compile(r"^(CZ|SK)(\d{8,10})$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_VS = re.compile(r"^\d{1,10}$")


def normalize_ico(value: str) -> str:
    """Strip spaces and left-pad to 8 digits (older IČO were written with 6 or 7 digits)."""
    if len(value) == 8 and value.isdigit():
        return value
    digits = re.sub(r"\s+", "", value)
    if digits.isdigit() and 6 <= len(digits) < 8:
        digits = digits.zfill(8)
    return digits


def is_valid_ico(value: str) -> bool:
    """IČO: 8 ASCII digits, the last one a mod-11 check digit over weights 8..2."""
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return False
    c = value.encode()  # byte values: digit d is 48 + d; the weights 8..2 sum to 35
    total = 8 * c[0] + 7 * c[1] + 6 * c[2] + 5 * c[3] + 4 * c[4] + 3 * c[5] + 2 * c[6] - 48 * 35
    return (11 - total % 11) % 10 == c[7] - 48


def normalize_dic(value: str) -> str:
    if value.isalnum():
        return value.upper()
    return re.sub(r"[\s-]+", "", value).upper()


def is_valid_dic(value: str) -> bool:
    """DIČ / IČ DPH: CZ + 8-10 digits, SK + 10 digits."""
    match = _DIC.match(value)
    if not match:
        return False
    country, digits = match.groups()
    return not (country == "SK" and len(digits) != 10)


def is_valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def normalize_domain(value: str) -> str:
    """Lower-case host without scheme, path or leading www."""
    host = value.strip().lower()
    if "/" in host or ":" in host:
        host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0].split(":", 1)[0]
    return host.removeprefix("www.")


def is_valid_domain(value: str) -> bool:
    return bool(_DOMAIN.match(value))


def is_valid_variable_symbol(value: str) -> bool:
    """Variabilní symbol: up to 10 digits."""
    return bool(_VS.match(value))
