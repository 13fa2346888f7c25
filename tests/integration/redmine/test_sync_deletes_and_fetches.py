"""Redmine as a target and as a webhook source through Spojka's sync engine: a task deleted
in the planning file is deleted in Redmine when the connection propagates deletes (once,
and one Redmine refuses to lose becomes a dead letter with the reason), and an id-only
webhook is completed from Redmine by ``read_one``."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from spojka.connectors import registry
from spojka.connectors.base import (
    WebhookEvent,
    parse_generic_events,
    sign_payload,
    verify_hmac_signature,
)
from spojka.connectors.redmine.connector import RedmineConnector
from spojka.core.db import make_engine, upgrade
from spojka.localsystems.redmine import RedmineServer
from spojka.sync import service, webhooks
from spojka.sync.engine import SyncEngine

pytestmark = pytest.mark.redmine

SECRET = "whsec-redmine"
PLAN_MAPPING = """
mapping: plan
version: 1
streams:
  tasks:
    entity: Task
    direction: in
    fields:
      subject: nazev
      project_id: projekt
"""
PM_MAPPING = """
mapping: pm
version: 1
streams:
  tasks:
    entity: Task
    direction: both
    fields:
      subject: subject
      project_id: project_id
"""
FAST = {"max_attempts": 3, "retry_base_s": 0.01, "retry_cap_s": 0.05}


class SignedRedmine(RedmineConnector):
    """Redmine with Spojka's generic signed webhooks in front (as a Redmine webhook plugin
    posting ``{"event_id", "stream", "id"}`` would send them): id-only events."""

    kind = "test-redmine-signed"

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        lower = {k.lower(): v for k, v in headers.items()}
        verify_hmac_signature(SECRET, lower.get("x-spojka-signature"), body)
        return parse_generic_events(body)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[sa.Engine]:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def redmine(redmine_server: RedmineServer) -> Iterator[RedmineConnector]:
    conn = RedmineConnector({"url": redmine_server.url, "api_key": redmine_server.api_key})
    yield conn
    conn.close()


def _project(redmine: RedmineConnector, key: str) -> str:
    return redmine.write(
        redmine.stream("projects"),
        {"name": f"Rozvoj e-shopu {key}"},
        external_id=None,
        idempotency_key=key,
    ).external_id


def _write_plan(folder: Path, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "tasks.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "nazev", "projekt", "zmeneno"])
        writer.writeheader()
        writer.writerows(rows)


def _redmine_id(db: sa.Engine, plan_id: str) -> str:
    record = service.find_record(db=db, system="plan", entity="Task", external_id=plan_id)
    return str(record["links"]["pm"])


def test_a_task_deleted_in_the_plan_is_deleted_in_redmine_once(
    db: sa.Engine, tmp_path: Path, redmine_server: RedmineServer, redmine: RedmineConnector
) -> None:
    project = _project(redmine, "plan-deletes")
    rows = [
        {"id": str(i), "nazev": name, "projekt": project, "zmeneno": f"2026-11-0{i}T08:00:00"}
        for i, name in enumerate(
            ["Košík a platby", "Napojení na dopravce", "Věrnostní program"], start=1
        )
    ]
    folder = tmp_path / "plan"
    _write_plan(folder, rows)
    service.save_connection(
        db=db,
        name="plan",
        kind="file",
        config={
            "path": str(folder),
            "streams": {"tasks": {"entity": "Task", "cursor_field": "zmeneno"}},
        },
        mapping_yaml=PLAN_MAPPING,
    )
    service.save_connection(
        db=db,
        name="pm",
        kind="redmine",
        config={"url": redmine_server.url, "api_key": redmine_server.api_key},
        settings={**FAST, "propagate_deletes": True},
        mapping_yaml=PM_MAPPING,
    )
    engine = SyncEngine(db)
    try:
        engine.run("plan")
        tasks = redmine.stream("tasks")
        issues = {row["id"]: _redmine_id(db, row["id"]) for row in rows}
        for row in rows:
            issue = redmine.read_one(tasks, issues[row["id"]])
            assert issue is not None and issue["subject"] == row["nazev"]
        # someone logs time on the third task in Redmine: losing it is not Spojka's call
        redmine.write(
            redmine.stream("time_entries"),
            {"issue_id": issues["3"], "hours": 4, "spent_on": "2026-11-20"},
            external_id=None,
            idempotency_key="plan-time",
        )

        _write_plan(folder, rows[1:2])  # tasks 1 and 3 were dropped from the plan
        [report] = service.reconcile(db=db, engine=engine, connection="plan", apply=True)
        assert report["deleted_in_source"] == 2
        assert service.list_conflicts(db=db) == []  # the connection allows deletes
        engine.deliver("pm")

        assert redmine.read_one(tasks, issues["1"]) is None
        assert redmine.read_one(tasks, issues["2"]) is not None
        kept = redmine.read_one(tasks, issues["3"])
        assert kept is not None and kept["spent_hours"] == 4.0
        [dead] = service.list_dead_letters(db=db, connection="pm")
        third = service.find_record(db=db, system="plan", entity="Task", external_id="3")
        assert dead.canonical_id == third["canonical_id"]
        assert dead.external_id == issues["3"]  # the issue's id in Redmine, to look it up
        assert dead.attempts == 1  # refused for good: not retried
        assert "4 h of logged time" in dead.error

        # more reconciliations and deliveries delete nothing more and fail nothing more
        service.reconcile(db=db, engine=engine, connection="plan", apply=True)
        engine.deliver("pm")
        assert redmine.read_one(tasks, issues["2"]) is not None
        assert len(service.list_dead_letters(db=db, connection="pm")) == 1
        with db.connect() as conn:
            done = conn.execute(
                sa.text(
                    "SELECT count(*) FROM sync_delivery WHERE connection = 'pm' "
                    "AND source_event LIKE '%deleted%' AND status = 'done'"
                )
            ).scalar()
        assert done == 1
    finally:
        engine.close()


def _post(engine: SyncEngine, event_id: str, issue_id: str) -> webhooks.Receipt:
    body = json.dumps({"event_id": event_id, "stream": "tasks", "id": issue_id}).encode()
    headers = {"X-Spojka-Signature": sign_payload(SECRET, body)}
    return webhooks.receive(engine=engine, connection="pm", headers=headers, body=body)


def _settle(engine: SyncEngine) -> None:
    deadline = time.monotonic() + 60
    while True:
        with engine.db.connect() as conn:
            pending = conn.execute(
                sa.text("SELECT count(*) FROM sync_webhook_event WHERE status = 'pending'")
            ).scalar()
        if not pending:
            return
        assert time.monotonic() < deadline, "webhook inbox was not settled"
        webhooks.process_pending(engine=engine)
        time.sleep(0.02)


def test_an_id_only_webhook_is_completed_from_redmine(
    db: sa.Engine, redmine_server: RedmineServer, redmine: RedmineConnector
) -> None:
    registry.register(SignedRedmine.kind, SignedRedmine)
    service.save_connection(
        db=db,
        name="pm",
        kind=SignedRedmine.kind,
        config={"url": redmine_server.url, "api_key": redmine_server.api_key},
        settings=FAST,
        mapping_yaml=PM_MAPPING,
    )
    project = _project(redmine, "webhooks")
    tasks = redmine.stream("tasks")
    issue = redmine.write(
        tasks,
        {"project_id": project, "subject": "Migrace zákazníků"},
        external_id=None,
        idempotency_key="webhook-issue",
    ).external_id
    engine = SyncEngine(db)
    try:
        assert _post(engine, "rm-1", issue).stored == 1
        assert _post(engine, "rm-1", issue).stored == 0  # a redelivery is stored once
        _settle(engine)
        record = service.find_record(db=db, system="pm", entity="Task", external_id=issue)
        assert record["data"]["subject"] == "Migrace zákazníků"
        assert record["data"]["project_id"] == project

        redmine.write(
            tasks,
            {"subject": "Migrace zákazníků a objednávek"},
            external_id=issue,
            idempotency_key="webhook-edit",
        )
        _post(engine, "rm-2", issue)
        _settle(engine)
        record = service.find_record(db=db, system="pm", entity="Task", external_id=issue)
        assert record["data"]["subject"] == "Migrace zákazníků a objednávek"
        history = service.history(db=db, canonical_id=record["canonical_id"])
        assert [h["data"]["subject"] for h in history] == [
            "Migrace zákazníků",
            "Migrace zákazníků a objednávek",
        ]
        assert service.list_dead_letters(db=db) == []
    finally:
        engine.close()
