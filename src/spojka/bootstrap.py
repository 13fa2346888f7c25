"""The composition root: settings → database → secrets → runtime, wired in one place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from spojka.core import db
from spojka.core.logging import configure_logging
from spojka.core.settings import Settings, load_settings
from spojka.governance.secret_store import SecretStore, load_key


@dataclass
class Spojka:
    """One running instance: what every service, router and flow needs to reach."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: SecretStore

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url


_current: Spojka | None = None


def bootstrap(
    settings: Settings | None = None,
    *,
    migrate: bool = False,
    create_key: bool = False,
    check_schema: bool = True,
    configure_logs: bool = True,
) -> Spojka:
    """Build the instance; a wrong database or setting raises one clear SpojkaError."""
    global _current
    settings = settings or load_settings()
    if configure_logs:
        configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    engine = db.make_engine(url)
    db.check_connection(engine)
    if migrate:
        from spojka.runtime.engine import migrate_system_tables

        db.upgrade(url)
        migrate_system_tables(settings)
    elif check_schema:
        db.require_migrated(engine, url)
    key = load_key(settings, create=create_key)
    _current = Spojka(
        settings=settings,
        engine=engine,
        sessions=db.session_factory(engine),
        secrets=SecretStore(key),
    )
    return _current


def current() -> Spojka:
    """The instance set up by ``bootstrap`` in this process."""
    if _current is None:
        raise RuntimeError("spojka.bootstrap.bootstrap() has not been called in this process")
    return _current


def reset() -> None:
    global _current
    if _current is not None:
        _current.engine.dispose()
    _current = None
