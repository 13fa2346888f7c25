from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.settings import load_settings


@pytest.fixture
def spojka_app(db_url: str, tmp_path: Path) -> Iterator[Spojka]:
    """A migrated Spojka instance on a fresh database (SQLite and PostgreSQL)."""
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    app = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    yield app
    reset()
