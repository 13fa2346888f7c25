"""Redmine through Spojka's sync engine: issues reach the canonical store, a status change
arrives as a new version on the next poll, and a deleted issue is found by reconciliation."""

from __future__ import annotations

from pathlib import Path

import pytest

import spojka.connectors.redmine as package
from spojka.connectors.redmine.connector import RedmineConnector
from spojka.core.db import make_engine, upgrade
from spojka.localsystems.redmine import RedmineServer
from spojka.sync import service
from spojka.sync.engine import SyncEngine

pytestmark = pytest.mark.redmine


def test_issues_sync_status_change_and_delete(
    redmine_server: RedmineServer, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    db = make_engine(sqlite_url)
    config = {"url": redmine_server.url, "api_key": redmine_server.api_key}
    mapping = (Path(package.__file__).parent / "mappings" / "redmine.yaml").read_text()
    service.save_connection(db=db, name="pm", kind="redmine", config=config, mapping_yaml=mapping)
    redmine = RedmineConnector(config)
    project = redmine.write(
        redmine.stream("projects"),
        {"name": "Zavedení docházky – Prešov"},
        external_id=None,
        idempotency_key="sync-project",
    )
    tasks = redmine.stream("tasks")
    kept = redmine.write(
        tasks,
        {
            "project_id": project.external_id,
            "subject": "Nastavit směny a svátky",
            "estimated_hours": 6,
        },
        external_id=None,
        idempotency_key="sync-kept",
    )
    doomed = redmine.write(
        tasks,
        {"project_id": project.external_id, "subject": "Duplicitní úkol"},
        external_id=None,
        idempotency_key="sync-doomed",
    )
    engine = SyncEngine(db)
    try:
        engine.run("pm", streams=["projects", "tasks"])
        stored = service.find_record(
            db=db, system="pm", entity="Task", external_id=kept.external_id
        )
        assert stored["data"]["subject"] == "Nastavit směny a svátky"
        assert stored["data"]["status"] == "new"
        assert stored["data"]["project_id"] == project.external_id

        redmine.write(
            tasks, {"status": "Closed"}, external_id=kept.external_id, idempotency_key="sync-close"
        )
        engine.run("pm", streams=["tasks"])
        closed = service.find_record(
            db=db, system="pm", entity="Task", external_id=kept.external_id
        )
        assert closed["data"]["status"] == "closed"
        assert closed["version"] > stored["version"]

        redmine.client.delete(f"/issues/{doomed.external_id}.json")
        report = service.reconcile(db=db, engine=engine, connection="pm", apply=True)
        task_report = next(r for r in report if r["stream"] == "tasks")
        assert task_report["deleted_ids"] == [doomed.external_id]
        gone = service.find_record(
            db=db, system="pm", entity="Task", external_id=doomed.external_id
        )
        assert gone["deleted"]
        still = service.find_record(db=db, system="pm", entity="Task", external_id=kept.external_id)
        assert not still["deleted"]
    finally:
        engine.close()
        redmine.close()
        db.dispose()
