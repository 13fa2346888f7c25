"""``sync.run`` as a durable flow of the runtime: a run record with the sync's figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import spojka.sync.flows  # noqa: F401  (registers the flow until FLOW_MODULES lists it)
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.runtime import engine, runs
from tests.integration.sync.helpers import connect_crm, count, write_accounts


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Spojka]:
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'spojka.sqlite'}"
    )
    app = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    engine.launch(settings)
    yield app
    engine.shutdown()
    reset()


def test_sync_run_flow_keeps_a_run_record(instance: Spojka, tmp_path: Path) -> None:
    write_accounts(tmp_path / "crm", 40, bad={5})
    connect_crm(instance.engine, tmp_path / "crm")
    workflow_id = engine.enqueue(instance.settings, "sync.run", connection="crm")
    result = engine.wait_result(instance.settings, workflow_id, timeout=120)
    assert result["outcome"] == "dead_lettered"  # one poison record, the rest synced
    assert result["streams"]["accounts"]["created"] == 39
    assert count(instance.engine, "sync_record") == 39
    with transaction(instance.sessions) as session:
        summary = {s.flow: s for s in runs.summarize(session)}
    assert summary["sync.run"].runs == 1
