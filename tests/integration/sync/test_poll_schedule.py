"""The running runtime polls connections that have a polling interval, with nobody asking:
a record added to a folder arrives, a connection without an interval is left alone, a slot
is queued once however often it is asked for, and a broken connection stops no other."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import utcnow
from spojka.core.settings import load_settings
from spojka.runtime import engine
from spojka.sync import schedule, service
from tests.integration.sync.helpers import CRM_MAPPING, count, write_accounts
from tests.support import cli_env, spojka_cli

DEADLINE_S = 120.0


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Iterator[Spojka]:
    """A migrated Spojka; the test launches the runtime when it wants it running."""
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    app = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    yield app
    engine.cancel_open_runs(settings)
    engine.shutdown()
    reset()


def connect_folder(
    app: Spojka, name: str, folder: Path, *, interval_s: float | None = None
) -> None:
    service.save_connection(
        db=app.engine,
        name=name,
        kind="file",
        config={
            "path": str(folder),
            "streams": {"accounts": {"entity": "Account", "cursor_field": "zmeneno"}},
        },
        settings={"poll_interval_s": interval_s} if interval_s is not None else {},
        mapping_yaml=CRM_MAPPING.format(direction="in"),
    )


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_S:.0f} s: {what}")
        time.sleep(0.2)


def runs_of(app: Spojka, connection: str) -> int:
    return count(app.engine, "flow_run", f"flow = 'sync.run' AND subject = '{connection}'")


def plan(app: Spojka, connection: str) -> schedule.PollPlan:
    (found,) = schedule.plans(db=app.engine, names=[connection])
    return found


def status_lines(app: Spojka, tmp_path: Path) -> dict[str, str]:
    """``spojka sync status``: the polling table's row of each connection, by name."""
    env = cli_env(tmp_path / "data", app.settings.resolved_database_url)
    shown = spojka_cli("sync", "status", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "poll every" in shown.stdout and "next poll" in shown.stdout
    polling = shown.stdout.split("poll every", 1)[1]
    rows: dict[str, str] = {}
    for line in polling.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and cells[0]:
            rows.setdefault(cells[0], " ".join(cells[1:]))
    return rows


def test_a_record_added_to_the_folder_arrives_without_a_manual_poll(
    instance: Spojka, tmp_path: Path
) -> None:
    write_accounts(tmp_path / "crm", 20)
    connect_folder(instance, "crm", tmp_path / "crm", interval_s=1)
    write_accounts(tmp_path / "quiet", 5)
    connect_folder(instance, "quiet", tmp_path / "quiet")  # no interval: on demand only
    engine.launch(instance.settings)

    wait_until("first scheduled poll", lambda: count(instance.engine, "sync_link") == 20)
    write_accounts(tmp_path / "crm", 21)  # one more customer in the CRM's export
    wait_until("the new record", lambda: count(instance.engine, "sync_link") == 21)
    wait_until(
        "a later poll of crm is recorded",
        lambda: plan(instance, "crm").outcome not in (None, "running"),
    )

    crm = plan(instance, "crm")
    assert crm.interval_s == 1.0
    assert crm.outcome == "automated" and crm.failures == 0
    assert crm.last_poll_at is not None and crm.next_poll_at is not None
    assert runs_of(instance, "crm") >= 2
    quiet = plan(instance, "quiet")
    assert quiet.last_poll_at is None and quiet.next_poll_at is None
    assert runs_of(instance, "quiet") == 0
    assert count(instance.engine, "sync_cursor", "connection = 'quiet'") == 0
    shown = status_lines(instance, tmp_path)
    assert "1 s" in shown["crm"] and "automated" in shown["crm"]
    assert "on demand" in shown["quiet"]

    # finished ticks do not pile up in the runtime's tables; the polls stay
    client = engine.client(instance.settings)
    assert client.list_workflows(name=schedule.TICK_FLOW, status="SUCCESS")
    polls = len(client.list_workflows(name="sync.run"))
    assert schedule.prune_ticks(settings=instance.settings, before=utcnow()) >= 1
    assert (
        client.list_workflows(
            name=schedule.TICK_FLOW,
            status="SUCCESS",
            end_time=(utcnow() - timedelta(seconds=30)).isoformat(),
        )
        == []
    )
    assert len(client.list_workflows(name="sync.run")) >= polls


def test_scheduled_polls_that_changed_nothing_are_forgotten(
    instance: Spojka, tmp_path: Path
) -> None:
    write_accounts(tmp_path / "crm", 20)
    connect_folder(instance, "crm", tmp_path / "crm", interval_s=1)
    engine.launch(instance.settings)
    wait_until("three scheduled polls", lambda: runs_of(instance, "crm") >= 3)
    wait_until("the newest poll ended", lambda: plan(instance, "crm").outcome != "running")
    engine.shutdown()  # no new polls while the test counts
    with instance.engine.connect() as conn:
        runs = dict(
            conn.execute(
                sa.text(
                    "SELECT workflow_id, detail FROM flow_run "
                    "WHERE flow = 'sync.run' AND outcome = 'automated'"
                )
            ).all()
        )
    details = {k: v if isinstance(v, dict) else json.loads(v) for k, v in runs.items()}
    idle = {k for k, d in details.items() if schedule.is_idle(d)}
    [first] = [k for k, d in details.items() if d["streams"]["accounts"]["created"] == 20]
    assert first not in idle and len(idle) >= 2
    client = engine.client(instance.settings)
    polls = {w.workflow_id for w in client.list_workflows(name="sync.run")}

    pruned = schedule.prune_idle_polls(
        db=instance.engine, settings=instance.settings, before=utcnow() + timedelta(minutes=1)
    )

    assert pruned == len(idle)
    with instance.engine.connect() as conn:
        kept = set(
            conn.execute(sa.text("SELECT workflow_id FROM flow_run WHERE flow = 'sync.run'"))
            .scalars()
            .all()
        )
    assert first in kept and not kept & idle
    assert {w.workflow_id for w in client.list_workflows(name="sync.run")} == polls - idle
    assert plan(instance, "crm").last_poll_at is not None  # the last poll is still known
    # nothing newer than the cut-off is touched
    assert (
        schedule.prune_idle_polls(
            db=instance.engine, settings=instance.settings, before=utcnow() - timedelta(days=1)
        )
        == 0
    )


def test_one_slot_is_queued_once_and_a_running_poll_is_not_queued_again(
    instance: Spojka, tmp_path: Path
) -> None:
    write_accounts(tmp_path / "crm", 10)
    connect_folder(instance, "crm", tmp_path / "crm", interval_s=3600)
    now = utcnow()
    settings, db = instance.settings, instance.engine

    # two workers' ticks (or one repeated after a restart) in the same slot
    first = schedule.enqueue_due(db=db, settings=settings, now=now)
    again = schedule.enqueue_due(db=db, settings=settings, now=now + timedelta(seconds=1))
    assert first == again == [schedule.poll_workflow_id("crm", schedule.slot_start(now, 3600))]
    # the next slot while that poll still waits (no worker yet): not queued a second time
    later = schedule.enqueue_due(db=db, settings=settings, now=now + timedelta(seconds=3601))
    assert later == []
    queued = engine.client(settings).list_workflows(name="sync.run")
    assert [w.workflow_id for w in queued] == first

    engine.launch(settings)  # its own tick asks for the same slot too
    engine.wait_result(settings, first[0], timeout=DEADLINE_S)
    assert count(db, "sync_link") == 10
    assert schedule.enqueue_due(db=db, settings=settings, now=now) == []  # polled: not due
    assert runs_of(instance, "crm") == 1
    assert [w.workflow_id for w in engine.client(settings).list_workflows(name="sync.run")] == (
        first
    )


def test_a_poll_still_running_is_not_started_again(instance: Spojka, tmp_path: Path) -> None:
    rows = write_accounts(tmp_path / "data-ready", 5)
    folder = tmp_path / "crm"
    folder.mkdir()
    os.mkfifo(folder / "accounts.csv")  # a poll reading it waits until the test writes
    connect_folder(instance, "crm", folder, interval_s=1)
    engine.launch(instance.settings)
    client = engine.client(instance.settings)

    try:
        wait_until("the first poll is running", lambda: plan(instance, "crm").outcome == "running")
        started = utcnow()
        wait_until(
            "two more ticks while it runs",
            lambda: (
                len(client.list_workflows(name=schedule.TICK_FLOW, start_time=started.isoformat()))
                >= 2
            ),
        )
        running = client.list_workflows(name="sync.run")
        assert len(running) == 1 and running[0].status == "PENDING"
    finally:
        # the source answers: this poll gets the rows, later polls read a plain file
        try:
            fd: int | None = os.open(folder / "accounts.csv", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            fd = None  # no poll is reading
        os.replace(tmp_path / "data-ready" / "accounts.csv", folder / "accounts.csv")
        if fd is not None:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fifo:
                writer = csv.DictWriter(fifo, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    engine.wait_result(instance.settings, running[0].workflow_id, timeout=DEADLINE_S)
    assert count(instance.engine, "sync_link") == 5
    assert plan(instance, "crm").failures == 0


def test_a_broken_connection_fails_visibly_and_the_others_are_still_polled(
    instance: Spojka, tmp_path: Path
) -> None:
    write_accounts(tmp_path / "crm", 10)
    connect_folder(instance, "crm", tmp_path / "crm", interval_s=1)
    connect_folder(instance, "broken", tmp_path / "no-such-folder", interval_s=1)
    engine.launch(instance.settings)

    wait_until("broken fails", lambda: plan(instance, "broken").failures >= 1)
    wait_until("crm polled", lambda: count(instance.engine, "sync_link") == 10)
    write_accounts(tmp_path / "crm", 11)
    wait_until("crm still polled", lambda: count(instance.engine, "sync_link") == 11)

    broken = plan(instance, "broken")
    assert broken.outcome in ("failed", "running") and broken.failures >= 1
    assert broken.error is None or "no-such-folder" in broken.error
    failed = count(instance.engine, "flow_run", "subject = 'broken' AND outcome = 'failed'")
    assert failed >= 1
    health = service.health(db=instance.engine, connection="broken", check_system=False)
    assert health["ok"] is False
    assert health["polling"]["failures"] >= 1
    assert "no-such-folder" in (health["polling"]["last_error"] or "")
    shown = status_lines(instance, tmp_path)
    assert "failed" in shown["broken"] or "running" in shown["broken"]


def test_two_worker_processes_poll_a_connection_one_poll_at_a_time(
    instance: Spojka, tmp_path: Path
) -> None:
    write_accounts(tmp_path / "crm", 2_000)
    connect_folder(instance, "crm", tmp_path / "crm", interval_s=1)
    env = cli_env(tmp_path / "data", instance.settings.resolved_database_url)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "spojka", "worker", "--processes", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            "three finished polls",
            lambda: (
                count(instance.engine, "flow_run", "subject = 'crm' AND ended_at IS NOT NULL") >= 3
            ),
        )
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
    assert count(instance.engine, "sync_link") == 2_000
    with instance.engine.connect() as conn:
        polls = conn.execute(
            sa.text(
                "SELECT workflow_id, started_at, ended_at FROM flow_run "
                "WHERE flow = 'sync.run' AND subject = 'crm' ORDER BY started_at"
            )
        ).all()
    assert all(p.workflow_id.startswith("sync.poll:crm:") for p in polls)
    finished = [p for p in polls if p.ended_at is not None]
    # both workers fire the schedule: still one poll per slot, never two at once
    for before, after in itertools.pairwise(finished):
        assert after.started_at >= before.ended_at, (before, after)
