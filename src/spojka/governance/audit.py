"""Append-only, hash-chained audit log: who did what to which object, why, under which trace."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.core import tracing
from spojka.core.db import utcnow
from spojka.governance.models import AuditAnchor, AuditEntry

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x5350_4F4A  # "SPOJ": serialises appends on PostgreSQL


def _plain(value: Any) -> Any:
    """JSON-safe copy (Decimal, date... become strings) so stored and hashed forms agree."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def _utc_text(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def entry_hash(entry: AuditEntry) -> str:
    """The hash of an entry's content chained to its predecessor's hash."""
    body = {
        "seq": entry.seq,
        "at": _utc_text(entry.at),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "trace_id": entry.trace_id,
        "prev_hash": entry.prev_hash,
    }
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    role: str | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (it commits with the change it records)."""
    # Appends must be strictly serial or the chain forks: take the write lock before reading
    # the anchor (an advisory lock on PostgreSQL; SQLite's write lock via a no-op UPDATE).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    else:
        session.execute(
            sa.update(AuditAnchor).where(AuditAnchor.id == 1).values(seq=AuditAnchor.seq)
        )
    anchor = session.get(AuditAnchor, 1)
    seq = (anchor.seq if anchor else 0) + 1
    entry = AuditEntry(
        seq=seq,
        at=utcnow(),
        actor=actor,
        role=role,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=_plain(before),
        after=_plain(after),
        reason=reason,
        trace_id=tracing.current_trace_id(),
        prev_hash=anchor.hash if anchor else GENESIS,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    if anchor is None:
        session.add(AuditAnchor(id=1, seq=seq, hash=entry.hash))
    else:
        anchor.seq, anchor.hash = seq, entry.hash
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    problem: str | None = None
    first_bad_seq: int | None = None


def verify(session: Session) -> ChainReport:
    """Walk the chain; report the first altered, inserted or deleted entry."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    rows = session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for entry in rows:
        count += 1
        if entry.seq != expected_seq:
            kind = "deleted" if entry.seq > expected_seq else "inserted"
            return ChainReport(
                False,
                count,
                f"entry {expected_seq} was {kind} (found seq {entry.seq})",
                expected_seq,
            )
        if entry.prev_hash != prev_hash:
            return ChainReport(
                False,
                count,
                f"entry {entry.seq} does not follow entry {entry.seq - 1}: an entry was "
                "inserted or deleted here",
                entry.seq,
            )
        if entry_hash(entry) != entry.hash:
            return ChainReport(False, count, f"entry {entry.seq} was altered", entry.seq)
        prev_hash, expected_seq = entry.hash, expected_seq + 1
    anchor = session.get(AuditAnchor, 1)
    if anchor is not None and (anchor.seq != expected_seq - 1 or anchor.hash != prev_hash):
        return ChainReport(
            False,
            count,
            f"the chain ends at entry {expected_seq - 1} but entry {anchor.seq} was the last "
            "written: entries at the end were deleted",
            expected_seq,
        )
    if anchor is None and count:
        return ChainReport(False, count, "the chain's anchor is missing", 1)
    return ChainReport(True, count)


def list_entries(
    session: Session,
    *,
    limit: int = 100,
    object_type: str | None = None,
    object_id: str | None = None,
) -> list[AuditEntry]:
    query = sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    return list(session.execute(query).scalars())
