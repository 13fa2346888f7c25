"""The real API of one Spojka instance, with a token per role, for the connections tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from spojka.api.app import create_app
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.governance import tokens
from spojka.governance.models import Role
from spojka.sync import router as sync_router


@dataclass
class Api:
    client: TestClient
    instance: Spojka
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    instance = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    plain: dict[str, str] = {}
    with transaction(instance.sessions) as db:
        for role in (Role.admin, Role.viewer, Role.integrator):
            _, plain[role.value] = tokens.create(db, name=f"t-{role.value}", role=role)
    with TestClient(create_app(instance)) as client:
        yield Api(client, instance, plain)
    sync_router.stop_workers()
    reset()
