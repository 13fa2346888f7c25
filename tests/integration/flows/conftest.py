"""One real BottleCRM, Tryton, Redmine and mail server per module, and Spojka serving on a
free port as BottleCRM's webhook target (with the in-process flow worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spojka.bootstrap import bootstrap, reset
from spojka.core.errors import ConfigError
from spojka.core.settings import load_settings
from spojka.flows import local


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalStack]:
    tmp: Path = tmp_path_factory.mktemp("flows")
    settings = load_settings(
        data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'spojka.sqlite'}"
    )
    app = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    try:
        with local.local_stack(app) as running:
            yield running
    except ConfigError as exc:
        # Never a silent skip: BottleCRM needs Python >= 3.12 on the machine.
        pytest.fail(f"the local systems cannot run here: {exc}", pytrace=False)
    finally:
        reset()
