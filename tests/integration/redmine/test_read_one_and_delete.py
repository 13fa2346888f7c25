"""RedmineConnector's read by id and delete, against a real Redmine 5: ``read_one`` gives
exactly the record a listing gives, ``delete`` removes issues, time entries and versions
once (a repeat is a success) and refuses what would take other data with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spojka.connectors.redmine.connector import RedmineConnector
from spojka.core.errors import AuthError, PermanentError, TransientError
from spojka.localsystems.common import free_port
from spojka.localsystems.redmine import RedmineServer
from tests.support import read_all

pytestmark = pytest.mark.redmine


@pytest.fixture
def connector(redmine_server: RedmineServer) -> Iterator[RedmineConnector]:
    conn = RedmineConnector({"url": redmine_server.url, "api_key": redmine_server.api_key})
    try:
        yield conn
    finally:
        conn.close()


def _project(conn: RedmineConnector, key: str) -> str:
    record = {
        "name": f"Implementace – Teplárna Zlín {key}",
        "template": "implementace",
        "members": [{"login": "jnovakova", "roles": ["Manager"]}],
    }
    return conn.write(
        conn.stream("projects"), record, external_id=None, idempotency_key=key
    ).external_id


def _issue(conn: RedmineConnector, project_id: str, subject: str, stream: str = "tasks") -> str:
    return conn.write(
        conn.stream(stream),
        {"project_id": project_id, "subject": subject},
        external_id=None,
        idempotency_key=f"{project_id}-{subject}",
    ).external_id


def _log_time(conn: RedmineConnector, issue_id: str, key: str) -> str:
    entry = {"issue_id": issue_id, "hours": 1.5, "spent_on": "2026-11-20", "comments": "Analýza"}
    return conn.write(
        conn.stream("time_entries"), entry, external_id=None, idempotency_key=key
    ).external_id


def test_read_one_gives_the_record_a_listing_gives_for_every_stream(
    connector: RedmineConnector,
) -> None:
    project_id = _project(connector, "read-one")
    change = _issue(connector, project_id, "Změna rozsahu školení", "change_requests")
    task = _issue(connector, project_id, "Nastavení účtového rozvrhu")
    _issue(connector, project_id, "Nejde tisk faktur", "support_tickets")
    _log_time(connector, task, "read-one-time")
    compared = {}
    for stream in connector.streams():
        listed = read_all(connector, stream)
        assert listed, f"nothing listed in {stream.name}"
        for record in listed:
            assert connector.read_one(stream, str(record["id"])) == record, stream.name
        compared[stream.name] = len(listed)
    assert compared["tasks"] >= 7 and compared["memberships"] >= 1

    # an issue belongs to the stream of its tracker only
    assert connector.read_one(connector.stream("tasks"), change) is None
    assert connector.read_one(connector.stream("change_requests"), task) is None
    assert connector.read_one(connector.stream("change_requests"), change) is not None
    assert connector.read_one(connector.stream("tasks"), "999999") is None
    assert connector.read_one(connector.stream("time_entries"), "not-a-number") is None


def test_a_deleted_issue_is_gone_and_a_second_delete_changes_nothing(
    connector: RedmineConnector,
) -> None:
    project_id = _project(connector, "delete-issue")
    tasks = connector.stream("tasks")
    doomed = _issue(connector, project_id, "Duplicitní požadavek")
    kept = _issue(connector, project_id, "Migrace skladových karet")

    first = connector.delete(tasks, doomed, idempotency_key="del-1")
    assert first.external_id == doomed and not first.already_gone
    assert connector.read_one(tasks, doomed) is None
    again = connector.delete(tasks, doomed, idempotency_key="del-1")
    assert again.external_id == doomed and again.already_gone
    assert connector.read_one(tasks, kept) is not None


def test_time_entries_and_unused_versions_are_deleted_once(connector: RedmineConnector) -> None:
    project_id = _project(connector, "delete-time")
    task = _issue(connector, project_id, "Školení uživatelů")
    entries = connector.stream("time_entries")
    entry = _log_time(connector, task, "delete-time-1")
    assert not connector.delete(entries, entry, idempotency_key="t").already_gone
    assert connector.read_one(entries, entry) is None
    assert connector.delete(entries, entry, idempotency_key="t").already_gone

    versions = connector.stream("versions")
    spare = connector.write(
        versions,
        {"project_id": project_id, "name": "Rezerva"},
        external_id=None,
        idempotency_key="spare",
    ).external_id
    assert not connector.delete(versions, spare, idempotency_key="v").already_gone
    assert connector.read_one(versions, spare) is None
    assert connector.delete(versions, spare, idempotency_key="v").already_gone


def test_deletes_redmine_would_take_other_data_with_are_refused_with_the_reason(
    connector: RedmineConnector,
) -> None:
    project_id = _project(connector, "refused")
    tasks = connector.stream("tasks")

    logged = _issue(connector, project_id, "Úkol s vykázanou prací")
    _log_time(connector, logged, "refused-time")
    with pytest.raises(PermanentError, match=r"1\.5 h of logged time") as refused:
        connector.delete(tasks, logged, idempotency_key="r1")
    assert f"#{logged}" in refused.value.message

    parent = _issue(connector, project_id, "Nadřazený úkol")
    child = connector.write(
        tasks,
        {"project_id": project_id, "subject": "Podúkol", "parent_id": parent},
        external_id=None,
        idempotency_key="refused-child",
    ).external_id
    with pytest.raises(PermanentError, match=f"has subtasks \\(#{child}\\)"):
        connector.delete(tasks, parent, idempotency_key="r2")

    used = next(
        str(i["version_id"])
        for i in read_all(connector, tasks)
        if i["project_id"] == project_id and i["version_id"]
    )
    with pytest.raises(PermanentError, match="issues use it"):
        connector.delete(connector.stream("versions"), used, idempotency_key="r3")
    # nothing was deleted by any refusal
    assert connector.read_one(tasks, logged) is not None
    assert connector.read_one(tasks, child) is not None
    assert connector.read_one(connector.stream("versions"), used) is not None

    with pytest.raises(PermanentError, match="does not support deletes"):
        connector.delete(connector.stream("projects"), project_id, idempotency_key="r4")
    assert [s.name for s in connector.streams() if s.supports_deletes] == [
        "versions",
        "tasks",
        "change_requests",
        "support_tickets",
        "time_entries",
    ]


def test_a_system_down_is_transient_and_a_bad_key_is_an_auth_error(
    redmine_server: RedmineServer,
) -> None:
    down = RedmineConnector({"url": f"http://127.0.0.1:{free_port()}", "api_key": "x" * 40})
    with pytest.raises(TransientError):
        down.read_one(down.stream("tasks"), "1")
    with pytest.raises(TransientError):
        down.delete(down.stream("time_entries"), "1", idempotency_key="k")
    bad = RedmineConnector({"url": redmine_server.url, "api_key": "f" * 40})
    with pytest.raises(AuthError, match="API key rejected"):
        bad.read_one(bad.stream("projects"), "1")
    with pytest.raises(AuthError, match="API key rejected"):
        bad.delete(bad.stream("time_entries"), "1", idempotency_key="k")
