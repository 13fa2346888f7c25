"""A real Tryton 8.2 per test module, started from the golden snapshot (installed on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spojka.connectors.tryton.client import TrytonClient
from spojka.localsystems import tryton


@pytest.fixture(scope="module")
def tryton_server() -> Iterator[tryton.TrytonServer]:
    server = tryton.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tryton_client(tryton_server: tryton.TrytonServer) -> Iterator[TrytonClient]:
    client = TrytonClient(
        tryton_server.url, tryton_server.database, tryton_server.user, tryton_server.password
    )
    try:
        yield client
    finally:
        client.close()
