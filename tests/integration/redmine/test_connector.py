"""RedmineConnector against a real Redmine 5: templates, polling, writes, reconciliation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import spojka.connectors.redmine as package
from spojka.connectors.base import Stream
from spojka.connectors.redmine.connector import RedmineConnector
from spojka.connectors.registry import create
from spojka.core.errors import ValidationError
from spojka.localsystems.redmine import RedmineServer
from spojka.sync.mapping import load_mapping
from tests.support import read_all

pytestmark = pytest.mark.redmine


@pytest.fixture
def connector(redmine_server: RedmineServer) -> Iterator[RedmineConnector]:
    conn = create("redmine", {"url": redmine_server.url, "api_key": redmine_server.api_key})
    assert isinstance(conn, RedmineConnector)
    try:
        yield conn
    finally:
        conn.close()


def new_project(conn: RedmineConnector, name: str, key: str) -> str:
    result = conn.write(
        conn.stream("projects"), {"name": name}, external_id=None, idempotency_key=key
    )
    return result.external_id


def test_health_says_exactly_what_is_wrong(redmine_server: RedmineServer) -> None:
    good = RedmineConnector({"url": redmine_server.url, "api_key": redmine_server.api_key})
    bad = RedmineConnector({"url": redmine_server.url, "api_key": "f" * 40})
    assert good.health().ok
    health = bad.health()
    assert not health.ok
    assert health.detail == "401 from Redmine: API key rejected"


def test_project_from_template_with_members_and_retry_finishes_the_same_project(
    connector: RedmineConnector,
) -> None:
    projects = connector.stream("projects")
    record = {
        "name": "Implementace ERP – Nemocnice Třebíč",
        "template": "implementace",
        "members": [
            {"login": "jnovakova", "roles": ["Manager"]},
            {"login": "mkovacova", "roles": ["Developer"]},
        ],
    }
    first = connector.write(projects, record, external_id=None, idempotency_key="deal-42")
    again = connector.write(projects, record, external_id=None, idempotency_key="deal-42")
    assert first.created and not again.created
    assert again.external_id == first.external_id
    project_id = first.external_id

    versions = [
        v
        for v in read_all(connector, connector.stream("versions"))
        if v["project_id"] == project_id
    ]
    assert [v["name"] for v in versions] == ["Analýza", "Implementace", "Předání a školení"]
    tasks = [
        t for t in read_all(connector, connector.stream("tasks")) if t["project_id"] == project_id
    ]
    assert len(tasks) == 6
    migration = next(t for t in tasks if t["subject"] == "Migrace dat z původního systému")
    assert migration["effort_hours"] == 24.0
    assert migration["tracker"] == "Task"
    assert (
        migration["version_id"]
        == next(v["id"] for v in versions if v["name"] == "Implementace").__str__()
    )
    members = [
        m
        for m in read_all(connector, connector.stream("memberships"))
        if m["project_id"] == project_id
    ]
    assert {(m["name"], tuple(m["roles"])) for m in members} == {
        ("Jana Nováková", ("Manager",)),
        ("Mária Kováčová", ("Developer",)),
    }


def test_status_change_notes_and_logged_time(connector: RedmineConnector) -> None:
    project_id = new_project(connector, "Podpora – Žilinská teplárenská", "support-1")
    tasks = connector.stream("tasks")
    issue = connector.write(
        tasks,
        {"project_id": project_id, "subject": "Chyba v exportu DPH", "estimated_hours": 3},
        external_id=None,
        idempotency_key="issue-1",
    )
    moved = connector.write(
        tasks,
        {"status": "In Progress"},
        external_id=issue.external_id,
        idempotency_key="issue-1-status",
    )
    connector.write(
        tasks,
        {"notes": "Opraveno v šabloně – ověřte prosím."},
        external_id=issue.external_id,
        idempotency_key="issue-1-note",
    )
    stored = connector.fetch(tasks, issue.external_id)
    assert stored is not None
    assert stored["status"] == "In Progress"
    assert moved.version is not None
    journal = connector.client.get(f"/issues/{issue.external_id}.json", include="journals")
    assert journal["issue"]["journals"][-1]["notes"] == "Opraveno v šabloně – ověřte prosím."

    entries = connector.stream("time_entries")
    entry = {
        "issue_id": issue.external_id,
        "hours": "2.5",
        "spent_on": "2026-11-20",
        "comments": "Ladění exportu, účetní závěrka",
        "activity": "Development",
    }
    logged = connector.write(entries, entry, external_id=None, idempotency_key="time-1")
    repeated = connector.write(entries, entry, external_id=None, idempotency_key="time-1")
    assert repeated.external_id == logged.external_id
    found = [e for e in read_all(connector, entries) if e["issue_id"] == issue.external_id]
    assert len(found) == 1
    assert found[0]["hours"] == 2.5
    assert found[0]["comments"] == "Ladění exportu, účetní závěrka"


def test_change_requests_carry_price_and_effort_and_stay_out_of_tasks(
    connector: RedmineConnector,
) -> None:
    project_id = new_project(connector, "Změnová řízení", "cr-project")
    change = connector.write(
        connector.stream("change_requests"),
        {
            "project_id": project_id,
            "subject": "Rozšíření o modul mezd",
            "price": 45000,
            "effort_hours": 30,
        },
        external_id=None,
        idempotency_key="cr-1",
    )
    changes = read_all(connector, connector.stream("change_requests"))
    stored = next(c for c in changes if str(c["id"]) == change.external_id)
    assert stored["tracker"] == "Change request"
    assert stored["price"] == 45000.0 and stored["effort_hours"] == 30.0
    assert change.external_id not in {
        str(t["id"]) for t in read_all(connector, connector.stream("tasks"))
    }


def test_polling_with_overlap_sees_closed_issues_and_survives_changes_while_paging(
    connector: RedmineConnector,
) -> None:
    project_id = new_project(connector, "Stránkování změn", "paging-project")
    tasks = connector.stream("tasks")
    created = [
        connector.write(
            tasks,
            {"project_id": project_id, "subject": f"Úkol {i:02d}"},
            external_id=None,
            idempotency_key=f"paging-{i}",
        )
        for i in range(25)
    ]
    since = created[0].version
    assert since is not None
    small = Stream(
        name="tasks",
        entity="Task",
        cursor_field="updated_on",
        version_field="updated_on",
        page_size=10,
    )
    first = connector.read_page(small, since=since, page_token=None)
    # While we page, someone closes an issue we already read and edits one we have not.
    connector.write(
        tasks,
        {"status": "Closed"},
        external_id=str(first.records[0]["id"]),
        idempotency_key="paging-close",
    )
    connector.write(
        tasks,
        {"subject": "Úkol 20 – upraveno"},
        external_id=created[20].external_id,
        idempotency_key="paging-edit",
    )
    records = list(first.records)
    token = first.next_token
    while token is not None:
        page = connector.read_page(small, since=since, page_token=token)
        records.extend(page.records)
        token = page.next_token
    ours = {r["id"] for r in records if r["project_id"] == project_id}
    assert ours == {int(c.external_id) for c in created}

    closed_id = first.records[0]["id"]
    assert any(r["id"] == closed_id and r["is_closed"] for r in records)
    # The next poll starts at the newest cursor minus the overlap window; closed issues stay
    # visible (status_id=*), and the engine de-duplicates by (id, updated_on).
    newest = dt.datetime.fromisoformat(max(r["updated_on"] for r in records).replace("Z", "+00:00"))
    overlap_since = (newest - dt.timedelta(seconds=300)).isoformat()
    again = {r["id"]: r for r in read_all(connector, tasks, since=overlap_since)}
    assert again[closed_id]["is_closed"] is True
    assert again[int(created[20].external_id)]["subject"] == "Úkol 20 – upraveno"


def test_deleted_issue_is_found_by_reconciliation(connector: RedmineConnector) -> None:
    project_id = new_project(connector, "Mazání úkolů", "delete-project")
    tasks = connector.stream("tasks")
    doomed = connector.write(
        tasks,
        {"project_id": project_id, "subject": "Smazat"},
        external_id=None,
        idempotency_key="delete-1",
    )
    before = set(connector.list_ids(tasks))
    connector.client.delete(f"/issues/{doomed.external_id}.json")
    assert before - set(connector.list_ids(tasks)) == {doomed.external_id}


def test_rejected_issue_carries_redmines_message(connector: RedmineConnector) -> None:
    project_id = new_project(connector, "Validace úkolů", "invalid-project")
    with pytest.raises(ValidationError, match="Subject cannot be blank"):
        connector.write(
            connector.stream("tasks"),
            {"project_id": project_id, "subject": ""},
            external_id=None,
            idempotency_key="invalid-1",
        )


def test_default_mapping_turns_every_real_record_into_a_valid_canonical_entity(
    connector: RedmineConnector,
) -> None:
    mapping = load_mapping(Path(package.__file__).parent / "mappings" / "redmine.yaml")
    project_id = new_project(connector, "Mapování – Košice", "mapping-project")
    issue = connector.write(
        connector.stream("tasks"),
        {"project_id": project_id, "subject": "Úkol pro mapování"},
        external_id=None,
        idempotency_key="mapping-issue",
    )
    connector.write(
        connector.stream("time_entries"),
        {"issue_id": issue.external_id, "hours": 1, "spent_on": "2026-11-21"},
        external_id=None,
        idempotency_key="mapping-time",
    )
    for name, stream_mapping in mapping.streams.items():
        for record in read_all(connector, connector.stream(name)):
            stream_mapping.to_canonical(record)
    projects = [
        mapping.streams["projects"].to_canonical(r)
        for r in read_all(connector, connector.stream("projects"))
    ]
    assert any(p["name"] == "Mapování – Košice" and p["status"] == "active" for p in projects)
