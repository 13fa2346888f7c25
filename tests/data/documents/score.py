"""Compares `spojka documents extract` output with a document's expected JSON, field by field."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

HEADER = [
    "number", "issue_date", "tax_point_date", "due_date", "currency", "variable_symbol", "iban",
    "supplier.name", "supplier.ico", "supplier.dic", "supplier.vat_id", "supplier.address",
    "customer.name", "customer.ico", "customer.dic", "customer.vat_id", "customer.address",
    "total_without_vat", "total_vat", "total_with_vat", "amount_due",
]  # fmt: skip
TABLES = ["lines", "vat_breakdown"]


def _norm(value: Any) -> Any:
    if isinstance(value, float) and value == int(value):
        return int(value)
    if isinstance(value, str):
        text = unicodedata.normalize("NFC", value)
        text = re.sub(r"[\s,]+", " ", text).strip().lower()
        return text.replace("–", "-")
    return value


def _get(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def _table_equal(got: list[dict[str, Any]] | None, want: list[dict[str, Any]]) -> bool:
    got = got or []
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        for key, value in w.items():
            if _norm(g.get(key)) != _norm(value):
                return False
    return True


def compare(got: dict[str, Any], want: dict[str, Any]) -> dict[str, bool]:
    """field → correct? for every header field and the two tables."""
    result = {path: _norm(_get(got, path)) == _norm(_get(want, path)) for path in HEADER}
    for table in TABLES:
        result[table] = _table_equal(got.get(table), want[table])
    return result
