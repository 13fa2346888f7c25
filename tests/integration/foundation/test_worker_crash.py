"""A worker killed with SIGKILL in the middle of a flow: the flow finishes exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from spojka.bootstrap import Spojka
from spojka.runtime import engine
from tests.support import cli_env


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_resumes_and_finishes_once(spojka_app: Spojka, db_url: str, tmp_path: Path):
    effects = tmp_path / "effects.txt"
    effects.touch()
    env = cli_env(spojka_app.settings.data_dir, db_url)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "spojka", "worker", "--processes", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        workflow_id = engine.enqueue(
            spojka_app.settings,
            "spojka.probe",
            workflow_id="crash-probe-1",
            effects=str(effects),
            pause=60.0,
        )
        _wait_for(lambda: "two-start" in effects.read_text(), 60, "step two to start")
        workers = _children(supervisor.pid)
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        # The supervisor starts worker-0 again; DBOS recovers its pending workflow.
        result = engine.wait_result(spojka_app.settings, workflow_id, timeout=90)
        assert result == ["one", "two", "three"]
        replacement = _children(supervisor.pid)
        assert replacement and replacement[0] != workers[0]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=30)
        engine.shutdown()
    lines = effects.read_text().split()
    # Completed steps are never re-run; the interrupted step ran again; the end ran once.
    assert lines.count("one") == 1
    assert lines.count("two-start") == 2
    assert lines.count("two") == 1
    assert lines.count("three") == 1
    with spojka_app.engine.connect() as conn:
        runs = (
            conn.execute(
                sa.text("SELECT outcome FROM flow_run WHERE workflow_id = 'crash-probe-1'")
            )
            .scalars()
            .all()
        )
    assert runs == ["automated"]
    # Starting the same workflow id again runs nothing new.
    again = engine.enqueue(
        spojka_app.settings,
        "spojka.probe",
        workflow_id="crash-probe-1",
        effects=str(effects),
        pause=0.0,
    )
    assert engine.wait_result(spojka_app.settings, again, timeout=10) == ["one", "two", "three"]
    assert effects.read_text().split().count("three") == 1
    engine.shutdown()
