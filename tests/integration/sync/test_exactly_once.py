"""kill -9 of the worker in the middle of a 10,000-record sync: exactly once, right cursor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.sync.helpers import connect_crm, connect_erp, count, setup_db, write_accounts
from tests.integration.sync.target import TargetServer

ROOT = Path(__file__).resolve().parents[3]
N = 10_000


def _worker(db_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOJKA_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.sync.worker", db_url, "crm"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill_9_mid_sync_then_restart_delivers_each_record_exactly_once(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    rows = write_accounts(tmp_path / "crm", N)
    db = setup_db(db_url)
    connect_crm(db, tmp_path / "crm", page_size=200)
    connect_erp(db, target.url)

    worker = _worker(db_url)
    # wait (not a timing assertion) until the worker is well inside the run, then kill -9
    while len(target.state.all("accounts")) < 2_500:
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    delivered_before_kill = len(target.state.all("accounts"))
    assert delivered_before_kill < N, "the worker finished before it could be killed"

    again = _worker(db_url)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err.decode()[-3000:]

    stored = target.state.all("accounts")
    assert len(stored) == N
    assert sorted(r["ico"] for r in stored.values()) == sorted(
        r["ic"] for r in rows
    )  # every source record, none twice
    assert max(target.state.creates.values()) == 1  # no idempotency key created twice
    # canonical side: one record and one version each, links to both systems, all delivered
    assert count(db, "sync_record") == N
    assert count(db, "sync_record", "version <> 1") == 0
    assert count(db, "sync_record_version") == N
    assert count(db, "sync_link", "system = 'crm'") == N
    assert count(db, "sync_link", "system = 'erp'") == N
    assert count(db, "sync_delivery", "status <> 'done'") == 0
    assert count(db, "sync_dlq") == 0
    with db.connect() as conn:
        import sqlalchemy as sa

        cursor = conn.execute(
            sa.text(
                "SELECT cursor_value, page_token, records_total FROM sync_cursor "
                "WHERE connection = 'crm' AND stream = 'accounts'"
            )
        ).one()
    assert cursor.cursor_value == max(r["zmeneno"] for r in rows)
    assert cursor.page_token is None
