"""Database engine, sessions and migrations: one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from spojka.core.errors import ConfigError, TransientError

# Every domain keeps its Alembic revisions in <domain>/migrations; each is its own branch
# (branch_labels = the domain name), so domains evolve without sharing one linear history.
MIGRATION_DOMAINS = (
    "governance",
    "runtime",
    "sync",
    "quality",
    "documents",
    "flows",
    "connectors",
)

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Spojka table."""

    type_annotation_map: dict[Any, Any] = {
        dict[str, Any]: sa.JSON,
        datetime: sa.DateTime(timezone=True),
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def check_connection(engine: Engine) -> None:
    """Fail with a clear TransientError when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TransientError(f"database {where} is not reachable: {reason}") from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_PACKAGE_ROOT / "core" / "migrations"))
    locations = [
        str(_PACKAGE_ROOT / domain / "migrations")
        for domain in MIGRATION_DOMAINS
        if (_PACKAGE_ROOT / domain / "migrations").is_dir()
    ]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply every domain's migrations (all branch heads)."""
    try:
        command.upgrade(alembic_config(url), "heads")
    except sa.exc.OperationalError as exc:
        raise TransientError(f"database is not reachable: {exc.orig}") from None


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return set()
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        return set(rows)


def require_migrated(engine: Engine, url: str) -> None:
    from alembic.script import ScriptDirectory

    wanted = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    if current_heads(engine) != wanted:
        raise ConfigError("database schema is not up to date: run `spojka db upgrade`")
