from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.sync.target import TargetServer, register


@pytest.fixture
def target() -> Iterator[TargetServer]:
    register()
    with TargetServer() as server:
        yield server
