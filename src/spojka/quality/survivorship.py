"""Golden record survivorship: which source value wins, per field, and why (lineage).

Rules, in order: the value from the system that owns the field; else the most recently
updated valid value; else the most complete value. Pure, so the rules are tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: default field ownership per entity (DESIGN: Account is the CRM's, identifiers and the
#: billing address the ERP's); a deployment overrides it with its own
DEFAULT_OWNERSHIP: dict[str, dict[str, str]] = {
    "account": {
        "name": "crm",
        "email": "crm",
        "phone": "crm",
        "domain": "crm",
        "ico": "erp",
        "dic": "erp",
        "iban": "erp",
        "street": "erp",
        "city": "erp",
        "zip": "erp",
        "country": "erp",
    },
    "contact": {
        "first_name": "crm",
        "last_name": "crm",
        "email": "crm",
        "phone": "crm",
    },
}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One member of a cluster as survivorship sees it."""

    record_id: str
    system: str
    values: Mapping[str, str | None]
    updated_at: datetime | None = None
    invalid_fields: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FieldLineage:
    value: str
    record_id: str
    system: str
    rule: str  # "owner system", "most recent valid", "most complete"

    def as_dict(self) -> dict[str, str]:
        return {
            "value": self.value,
            "record_id": self.record_id,
            "system": self.system,
            "rule": self.rule,
        }


@dataclass(slots=True)
class GoldenRecord:
    values: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, FieldLineage] = field(default_factory=dict)


def _recency(record: SourceRecord) -> float:
    return record.updated_at.timestamp() if record.updated_at else float("-inf")


def golden_record(
    entity: str,
    members: Sequence[SourceRecord],
    *,
    ownership: Mapping[str, str] | None = None,
) -> GoldenRecord:
    """The surviving value of every field across ``members`` with where it came from."""
    owners = DEFAULT_OWNERSHIP.get(entity, {}) if ownership is None else ownership
    golden = GoldenRecord()
    fields: list[str] = []
    for member in members:
        for name, value in member.values.items():
            if value not in (None, "") and name not in fields:
                fields.append(name)
    for name in fields:
        present = [m for m in members if m.values.get(name) not in (None, "")]
        valid = [m for m in present if name not in m.invalid_fields]
        owner = owners.get(name)
        chosen: SourceRecord | None = None
        rule = ""
        owned = [m for m in valid if owner is not None and m.system == owner]
        if owned:
            chosen = max(owned, key=lambda m: (_recency(m), m.record_id))
            rule = "owner system"
        elif valid:
            chosen = max(valid, key=lambda m: (_recency(m), m.record_id))
            rule = "most recent valid"
        else:
            chosen = max(present, key=lambda m: (len(str(m.values[name])), m.record_id))
            rule = "most complete"
        value = str(chosen.values[name])
        golden.values[name] = value
        golden.lineage[name] = FieldLineage(value, chosen.record_id, chosen.system, rule)
    return golden
