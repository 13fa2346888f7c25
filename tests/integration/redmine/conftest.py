"""A real Redmine 5 per test module, started from the golden snapshot (installed on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spojka.connectors.redmine.client import RedmineClient
from spojka.localsystems import redmine


@pytest.fixture(scope="module")
def redmine_server() -> Iterator[redmine.RedmineServer]:
    server = redmine.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redmine_client(redmine_server: redmine.RedmineServer) -> Iterator[RedmineClient]:
    with RedmineClient(redmine_server.url, redmine_server.api_key) as client:
        yield client
