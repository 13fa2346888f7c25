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
POLL_STATE = cast(sa.Table, models.PollState.__table__)
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


def insert_sql(conn: Connection, table: sa.Table, columns: Sequence[str]) -> str:
    """A driver-level INSERT for executemany with plain tuples (no per-row Core work)."""
    style = conn.dialect.paramstyle
    mark = "?" if style == "qmark" else "%s"
    names = ", ".join(columns)
    return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * len(columns))})"


def update_sql(conn: Connection, table: sa.Table, columns: Sequence[str], key: str) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sets = ", ".join(f"{c} = {mark}" for c in columns)
    return f"UPDATE {table.name} SET {sets} WHERE {key} = {mark}"


def db_value(conn: Connection, column: sa.Column[Any], value: Any) -> Any:
    """A value as the driver wants it for this column (SQLite stores datetimes as text)."""
    processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return processor(value) if processor else value


def bulk_insert(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows inside the caller's transaction: COPY on PostgreSQL, executemany
    with plain tuples on SQLite (no per-row statement or parameter processing)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    conn.exec_driver_sql(insert_sql(conn, table, columns), rows)
