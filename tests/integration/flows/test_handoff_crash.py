"""kill -9 of the worker in the middle of a handoff: after the restart it completes once.

The flow runs in a separate ``spojka worker`` process (a supervisor restarts a killed
worker with the same executor id, so DBOS recovers its pending workflow). Once the Redmine
project exists and while the Tryton order is being made, the worker gets SIGKILL.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.settings import load_settings
from spojka.flows import handoff, local
from spojka.runtime import engine
from tests.integration.flows.helpers import wait_until
from tests.support import cli_env

pytestmark = [pytest.mark.flows, pytest.mark.crm, pytest.mark.tryton, pytest.mark.redmine]


@pytest.fixture(scope="module")
def running_systems() -> Iterator[dict[str, Any]]:
    found = local.start_systems()
    try:
        yield found
    finally:
        local.stop_systems(found)


@pytest.fixture
def app(db_url: str, tmp_path: Path, running_systems: dict[str, Any]) -> Iterator[Spojka]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    instance = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    local.configure(
        instance,
        crm=running_systems["crm"],
        pm=running_systems["pm"],
        erp=running_systems["erp"],
        mail=running_systems["mail"],
        webhook_secret="whsec_unused",
    )
    yield instance
    engine.shutdown()
    reset()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_killed_worker_finishes_the_handoff_once(
    app: Spojka, db_url: str, running_systems: dict[str, Any]
) -> None:
    crm = running_systems["crm"]
    from spojka.connectors.bottlecrm.client import BottleCRMClient

    with BottleCRMClient(crm.url, crm.personal_token) as client:
        deal_id = local.czech_deal(client, suffix=secrets.token_hex(3))
        local.win(client, deal_id)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "spojka", "worker", "--processes", "1"],
        env=cli_env(app.settings.data_dir, db_url, SPOJKA_LOG_LEVEL="warning"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client_dbos = engine.client(app.settings)
    wid = handoff.start("bottlecrm", deal_id)
    try:

        def project_made() -> bool:
            steps = client_dbos.list_workflow_steps(wid)
            return any(
                s["function_name"] == "handoff.project"
                and isinstance(s["output"], dict)
                and s["output"].get("ok")
                for s in steps
            )

        wait_until("the Redmine project step to finish", project_made, timeout=180)
        workers = _children(supervisor.pid)
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        assert engine.status(app.settings, wid) == "PENDING"
        result = engine.wait_result(app.settings, wid, timeout=240)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
    assert result["outcome"] == "automated", result
    steps = [s["function_name"] for s in client_dbos.list_workflow_steps(wid)]
    assert steps.count("handoff.project") == 1  # a finished step is never re-run
    from spojka.connectors.redmine.client import RedmineClient
    from spojka.connectors.tryton.client import TrytonClient

    pm, erp = running_systems["pm"], running_systems["erp"]
    with RedmineClient(pm.url, pm.api_key) as redmine:
        project = redmine.get(f"/projects/{result['project']}.json")["project"]
        issues = redmine.get("/issues.json", project_id=project["id"], status_id="*")
    assert issues["total_count"] == 6
    with TrytonClient(erp.url, erp.database, erp.user, erp.password) as tryton:
        sales = tryton.search("sale.sale", [("comment", "like", f"%bottlecrm:{deal_id}]%")])
    assert sales == [result["sale"]]
    with BottleCRMClient(crm.url, crm.personal_token) as client:
        notes = [c["comment"] for c in client.comments("opportunities", deal_id)]
    assert sum("Projekt připraven" in n for n in notes) == 1
