"""Alembic environment shared by every domain's migration branch."""

from __future__ import annotations

from alembic import context

from spojka.core.db import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set by spojka.core.db.alembic_config"

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
