"""Pure sync rules: versions, idempotency keys, backoff, ownership and three-way merge.

No database, no HTTP: the engine feeds these plain values and acts on the answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Violation = Literal["conflict", "reject"]


# -- versions and hashes -------------------------------------------------------------------


def _version_key(value: str) -> tuple[int, Any]:
    text = value.strip()
    if text.lstrip("-").isdigit():
        return (0, int(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.replace(tzinfo=None) - (parsed.utcoffset() or timedelta())
        return (1, parsed)
    except ValueError:
        return (2, text)


def is_newer(incoming: str | None, stored: str | None) -> bool:
    """True when ``incoming`` is a later version than ``stored`` (numbers, ISO times, text)."""
    if incoming is None or stored is None:
        return True
    a, b = _version_key(incoming), _version_key(stored)
    if a[0] != b[0]:
        return incoming != stored
    return bool(a[1] > b[1])


def max_version(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if is_newer(a, b) else b


def new_canonical_id() -> str:
    """32 hex chars, time-ordered then random: inserts land at the end of every index."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def new_canonical_ids(count: int) -> list[str]:
    """``count`` new canonical ids with one read of the random source (not one per id)."""
    stamp = time.time_ns()
    noise = os.urandom(8 * count).hex()
    return [f"{stamp + i:016x}{noise[16 * i : 16 * i + 16]}" for i in range(count)]


def canonical_json(data: Any) -> str:
    """The one JSON text of a value: sorted keys, compact; equal content, equal text."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def newest(versions: list[str]) -> str | None:
    """The newest of many versions or cursor values (None for none)."""
    if not versions:
        return None
    first = versions[0]
    width = len(first)
    if "+" not in first and not first.endswith("Z") and all(len(v) == width for v in versions):
        # fixed-width numbers or zone-less ISO times of one format sort as text
        kind = _version_key(first)[0]
        if kind in (0, 1) and all(
            ("+" not in v and v[-1:] != "Z" and v[:1] != "-") for v in versions
        ):
            return max(versions)
    return max(versions, key=_version_key)


def content_hash(data: Mapping[str, Any]) -> str:
    """Stable hash of a record's content (key order does not matter)."""
    return text_hash(canonical_json(data))


def source_hash(raw: Mapping[str, Any]) -> str:
    """Cheap fingerprint of a raw source record, to skip unchanged input.

    Key order is not normalised: a source that reorders keys only costs a re-mapping,
    whose canonical content hash then finds nothing changed.
    """
    return hashlib.blake2b(repr(raw).encode(), digest_size=20).hexdigest()


def idempotency_key(source_event: str, step: str) -> str:
    """Key of one step of one source event: the same event and step always give the same key."""
    return hashlib.sha256(f"{source_event}\x1f{step}".encode()).hexdigest()[:64]


def cursor_since(cursor: str | None, *, cursor_type: str, overlap_s: float) -> str | None:
    """The low-water mark to read from: the committed cursor minus the overlap window."""
    if cursor is None:
        return None
    if cursor_type == "datetime":
        try:
            parsed = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
        except ValueError:
            return cursor
        return (parsed - timedelta(seconds=overlap_s)).isoformat()
    if cursor_type == "int":
        return str(int(cursor) - int(overlap_s))
    return cursor


# -- retries -------------------------------------------------------------------------------


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after: float | None = None,
    max_retry_after_s: float = 3600.0,
    rand: random.Random | None = None,
) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is a floor (capped)."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay = (rand or random).uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_retry_after_s))
    return delay


def take_token(
    *, tokens: float, updated_at: float, now: float, rate_per_s: float, burst: float
) -> tuple[bool, float, float]:
    """Token bucket: refill since ``updated_at``, take one if there is one.

    Returns (granted, tokens left, seconds to wait when not granted).
    """
    available = min(burst, tokens + max(0.0, now - updated_at) * rate_per_s)
    if available >= 1:
        return True, available - 1, 0.0
    return False, available, (1 - available) / rate_per_s


# -- ownership and conflicts -----------------------------------------------------------------


@dataclass(frozen=True)
class OwnershipPolicy:
    """Who is the source of truth per entity (``field='*'``) and per field."""

    owners: Mapping[tuple[str, str], str] = field(default_factory=dict)
    on_violation: Mapping[tuple[str, str], Violation] = field(default_factory=dict)

    def owner_of(self, entity: str, field_name: str) -> str | None:
        return self.owners.get((entity, field_name)) or self.owners.get((entity, "*"))

    def violation_mode(self, entity: str, field_name: str) -> Violation:
        if (entity, field_name) in self.owners:
            return self.on_violation.get((entity, field_name), "conflict")
        return self.on_violation.get((entity, "*"), "conflict")


@dataclass(frozen=True)
class FieldIssue:
    field: str
    kind: Literal["concurrent", "non_owner"]
    action: Violation
    current: Any
    incoming: Any


@dataclass
class MergeResult:
    """What to store: the merged data, which fields changed, and what needs a person."""

    data: dict[str, Any]
    changed: list[str]
    issues: list[FieldIssue]


def merge_change(
    *,
    entity: str,
    system: str,
    base: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    incoming: Mapping[str, Any],
    policy: OwnershipPolicy,
    open_conflict_fields: frozenset[str] = frozenset(),
) -> MergeResult:
    """Three-way merge of a system's change into the canonical record.

    ``base`` is what this system last saw (None = same as ``current``). A field the system
    did not change is ignored; a field only it changed is applied if it may (owner or no
    owner); a field changed on both sides to different values is a concurrent conflict. A
    field with an open conflict stays untouched until a person resolves it.
    """
    base = current if base is None else base
    data = dict(current)
    changed: list[str] = []
    issues: list[FieldIssue] = []
    for name, theirs in incoming.items():
        # an absent field and an empty one are the same value here: the caller passes
        # only fields the system sent, with None for those it explicitly emptied
        ours = current.get(name)
        if ours == theirs:
            continue
        before = base.get(name)
        if before == theirs:
            continue  # the system still shows the old value: it did not change this field
        owner = policy.owner_of(entity, name)
        if owner is not None and owner != system:
            issues.append(
                FieldIssue(name, "non_owner", policy.violation_mode(entity, name), ours, theirs)
            )
            continue
        if name in open_conflict_fields or before != ours:
            issues.append(FieldIssue(name, "concurrent", "conflict", ours, theirs))
            continue
        if theirs is None:
            data.pop(name, None)
        else:
            data[name] = theirs
        changed.append(name)
    return MergeResult(data=data, changed=changed, issues=issues)
