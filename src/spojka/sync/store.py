"""Small database helpers shared by the engine and the services (dialect differences)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from spojka.sync import models

CONNECTION = cast(sa.Table, models.Connection.__table__)
OWNERSHIP = cast(sa.Table, models.Ownership.__table__)
CURSOR = cast(sa.Table, models.Cursor.__table__)
LINK = cast(sa.Table, models.Link.__table__)
RECORD = cast(sa.Table, models.Record.__table__)
VERSION = cast(sa.Table, models.RecordVersion.__table__)
CONFLICT = cast(sa.Table, models.Conflict.__table__)
DELIVERY = cast(sa.Table, models.Delivery.__table__)
DLQ = cast(sa.Table, models.DeadLetter.__table__)
WEBHOOK = cast(sa.Table, models.WebhookEvent.__table__)
BUCKET = cast(sa.Table, models.RateBucket.__table__)

# SQLite allows 32766 bound parameters; PostgreSQL 65535. Stay far below both.
CHUNK = 900


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignore(conn: Connection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def lock_row_clause(conn: Connection, stmt: Any) -> Any:
    """SELECT … FOR UPDATE where the database has it (SQLite locks the whole file anyway)."""
    return stmt.with_for_update() if conn.dialect.name == "postgresql" else stmt
