"""Removing a connection (DELETE /api/v1/connections/{name}, `spojka sync disconnect`): syncing
with that system stops, its records and their history stay, open work is shown first."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from spojka.connectors import service as connections
from spojka.connectors.base import sign_payload
from spojka.core.db import utcnow
from spojka.core.errors import ConflictError
from spojka.governance import audit
from spojka.sync import schedule
from spojka.sync import service as sync_service
from spojka.sync.engine import SyncEngine
from tests.integration.connectors.conftest import Api
from tests.integration.sync.helpers import (
    CRM_MAPPING,
    connect_crm,
    connect_erp,
    count,
    edit_csv,
    ico,
    setup_db,
    write_accounts,
)
from tests.integration.sync.target import TargetServer, register
from tests.support import cli_env, spojka_cli

SECRET = "whsec-erp-Tajne"


@pytest.fixture
def target() -> Iterator[TargetServer]:
    register()
    with TargetServer() as server:
        yield server


def _delete(api: Api, name: str, role: str = "admin", **params: str) -> Any:
    return api.client.delete(f"/api/v1/connections/{name}", params=params, headers=api.auth(role))


def _webhook(api: Api, connection: str, event_id: str, name: str) -> Any:
    raw = json.dumps(
        {
            "event_id": event_id,
            "stream": "accounts",
            "id": "77",
            "version": 1,
            "record": {"name": name, "ico": ico(77), "email": "info@stavby.cz"},
        }
    ).encode()
    headers = {
        "X-Spojka-Signature": sign_payload(SECRET, raw),
        "Content-Type": "application/json",
    }
    return api.client.post(f"/api/v1/webhooks/{connection}", content=raw, headers=headers)


def _drained(db: sa.Engine) -> None:
    """Wait until the API's inbox worker has processed the stored webhooks (asynchronous)."""
    deadline = time.monotonic() + 60
    while count(db, "sync_webhook_event", "status = 'pending'"):
        assert time.monotonic() < deadline, "webhook inbox was not processed"
        time.sleep(0.05)


def _connection_audit(db: sa.Engine) -> list[audit.AuditEntry]:
    with Session(db) as session:
        return audit.list_entries(session, object_type="connection")


def test_removed_connections_stop_syncing_records_history_and_links_stay(
    api: Api, tmp_path: Path, target: TargetServer
) -> None:
    db = api.instance.engine
    folder = tmp_path / "crm"
    write_accounts(folder, 5)
    connect_crm(db, folder)
    connect_erp(
        db,
        target.url,
        secret=SECRET,
        settings={"max_attempts": 3, "retry_base_s": 0.01, "poll_interval_s": 60},
    )
    engine = SyncEngine(db)
    engine.run("crm")
    assert len(target.state.all("accounts")) == 5
    schedule.record_start(db=db, connection="crm", workflow_id="sync.poll:crm:test")
    assert _webhook(api, "erp", "evt-1", "Stavby Brno").status_code == 202
    _drained(db)
    records = count(db, "sync_record")
    assert records == 6
    first = sync_service.find_record(db=db, system="crm", entity="Account", external_id="0")

    removed = _delete(api, "crm")
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"]["links_kept"] == 5
    assert removed.json()["removed"]["cursors"] == 1
    listed = api.client.get("/api/v1/connections", headers=api.auth("viewer")).json()
    assert [c["name"] for c in listed] == ["erp"]
    assert count(db, "sync_cursor", "connection = 'crm'") == 0
    assert count(db, "sync_poll_state", "connection = 'crm'") == 0
    # the canonical records and their history stay; so do the links
    assert count(db, "sync_record") == records
    assert sync_service.history(db=db, canonical_id=first["canonical_id"])
    assert count(db, "sync_link", "system = 'crm'") == 5
    assert api.client.get("/api/v1/connections/crm", headers=api.auth("viewer")).status_code == 404

    # Added again under the same name, the same file finds its records: nothing twice.
    connect_crm(db, folder)
    engine.reload()
    result = engine.run("crm")
    assert result["streams"][0].stats.created == 0
    assert count(db, "sync_record") == records
    assert len(target.state.all("accounts")) == 5 and target.state.writes == 5

    # The target: its stored webhook secret goes, its webhooks get 404, it is no more polled.
    assert count(db, "secret", "name = 'connection/erp/webhook_secret'") == 1
    assert [p.connection for p in schedule.due(db=db, now=utcnow() + timedelta(hours=1))] == ["erp"]
    removed = _delete(api, "erp")
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"]["secrets_deleted"] == 1
    assert count(db, "secret", "name LIKE 'connection/erp/%'") == 0
    late = _webhook(api, "erp", "evt-2", "Stavby Brno v2")
    assert late.status_code == 404
    assert late.headers["content-type"] == "application/problem+json"
    assert "no connection 'erp'" in late.json()["detail"]
    assert count(db, "sync_webhook_event", "event_id = 'evt-2'") == 0
    assert schedule.due(db=db, now=utcnow() + timedelta(hours=1)) == []
    health = api.client.get("/api/v1/connections/erp/health", headers=api.auth("viewer"))
    assert health.status_code == 404
    assert count(db, "sync_record") == records

    entries = [e for e in _connection_audit(db) if e.action == "connection.delete"]
    assert sorted(e.object_id for e in entries) == ["crm", "erp"]
    erp = next(e for e in entries if e.object_id == "erp")
    assert erp.actor == "t-admin"
    assert erp.before is not None
    assert erp.before["credentials"] == {"webhook_secret": "db:connection/erp/webhook_secret"}
    assert erp.after is not None and erp.after["removed"]["secrets_deleted"] == 1
    assert SECRET not in json.dumps([(e.before, e.after) for e in entries])
    engine.close()


def test_open_dead_letters_refuse_the_removal_until_forced(api: Api, tmp_path: Path) -> None:
    db = api.instance.engine
    write_accounts(tmp_path / "crm", 5, bad={3})  # record 3 has an invalid IČO
    connect_crm(db, tmp_path / "crm")
    engine = SyncEngine(db)
    engine.run("crm")
    engine.close()

    refused = _delete(api, "crm")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    detail = refused.json()["detail"]
    assert "0 pending deliveries, 1 open dead letter, 0 open conflicts" in detail
    assert "--force" in detail and "force=true" in detail
    assert count(db, "sync_connection") == 1 and count(db, "sync_cursor") == 1

    forced = _delete(api, "crm", force="true")
    assert forced.status_code == 200, forced.text
    assert forced.json()["removed"]["dead_letters_discarded"] == 1
    [item] = api.client.get(
        "/api/v1/dlq", params={"state": "all"}, headers=api.auth("viewer")
    ).json()
    assert item["status"] == "discarded" and item["connection"] == "crm"
    with Session(db) as session:
        [discard] = audit.list_entries(session, object_type="dead_letter")
    assert discard.reason == "connection removed"
    assert count(db, "sync_record") == 4 and count(db, "sync_connection") == 0


def test_forget_links_drops_the_links_and_keeps_the_records(api: Api, tmp_path: Path) -> None:
    db = api.instance.engine
    write_accounts(tmp_path / "crm", 5)
    connect_crm(db, tmp_path / "crm")
    engine = SyncEngine(db)
    engine.run("crm")
    engine.close()

    removed = _delete(api, "crm", forget_links="true")
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"]["links_forgotten"] == 5
    assert count(db, "sync_link") == 0
    assert count(db, "sync_record") == 5 and count(db, "sync_record_version") == 5


def test_only_an_administrator_removes_and_an_unknown_name_is_a_404(
    api: Api, tmp_path: Path
) -> None:
    write_accounts(tmp_path / "crm", 1)
    connect_crm(api.instance.engine, tmp_path / "crm")
    assert api.client.delete("/api/v1/connections/crm").status_code == 401
    for role in ("viewer", "integrator"):
        assert _delete(api, "crm", role).status_code == 403
    assert count(api.instance.engine, "sync_connection") == 1
    unknown = _delete(api, "nope")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["detail"] == "no connection 'nope'"


def test_a_connection_removed_by_another_process_stops_taking_webhooks(
    api: Api, target: TargetServer
) -> None:
    db = api.instance.engine
    connect_erp(db, target.url, secret=SECRET)
    assert _webhook(api, "erp", "evt-1", "Stavby Brno").status_code == 202  # loaded here
    _drained(db)
    # `spojka sync disconnect erp` in another process: the API's cache is not told directly
    sync_service.remove_connection(db=db, name="erp", actor="cli")
    deadline = time.monotonic() + 60
    while (answer := _webhook(api, "erp", f"evt-{time.monotonic()}", "Pozdě")).status_code != 404:
        assert answer.status_code == 202
        assert time.monotonic() < deadline, "the removed connection still takes webhooks"
        time.sleep(0.2)
    assert count(db, "sync_record") == 1


def test_pending_deliveries_and_conflicts_are_counted_then_cancelled_and_withdrawn(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    folder = tmp_path / "crm"
    write_accounts(folder, 5, bad={3})
    db = setup_db(db_url)
    connect_crm(db, folder)
    connect_erp(db, target.url, secret=SECRET)
    engine = SyncEngine(db)
    engine.run("crm")
    record = sync_service.find_record(db=db, system="crm", entity="Account", external_id="1")
    # the same field edited in both systems; the CRM's write to the ERP waits in the outbox
    edit_csv(folder, "1", nazev="Novák a dcera s.r.o.")
    target.state.edit("accounts", record["links"]["erp"], name="NOVÁK A SYN (ERP)")
    engine.poll("crm")
    engine.poll("erp")
    assert count(db, "sync_delivery", "connection = 'erp' AND status = 'pending'") == 1
    [conflict] = sync_service.list_conflicts(db=db)

    with pytest.raises(ConflictError) as erp_refused:
        connections.remove(db=db, name="erp", actor="jana")
    assert (
        "connection 'erp' has open work: 1 pending delivery, 0 open dead letters, 1 open conflict"
    ) in erp_refused.value.message
    with pytest.raises(ConflictError) as crm_refused:
        connections.remove(db=db, name="crm", actor="jana")
    assert "0 pending deliveries, 1 open dead letter, 1 open conflict" in crm_refused.value.message

    removed = connections.remove(db=db, name="erp", actor="jana", force=True)
    assert removed["deliveries_cancelled"] == 1 and removed["conflicts_withdrawn"] == 1
    assert count(db, "sync_delivery", "status = 'pending'") == 0
    closed = sync_service.get_conflict(db=db, conflict_id=conflict.id)
    assert closed.status == "resolved" and closed.resolved_by == "jana"
    assert closed.resolution == {"withdrawn": "connection removed", "connection": "erp"}
    assert sync_service.list_conflicts(db=db) == []
    # the CRM keeps its own dead letter: still refused, now for that alone
    with pytest.raises(ConflictError) as again:
        connections.remove(db=db, name="crm", actor="jana")
    assert "0 pending deliveries, 1 open dead letter, 0 open conflicts" in again.value.message
    # the ERP gone, the CRM's changes are queued for nobody
    edit_csv(folder, "2", nazev="Svoboda a vnuk s.r.o.")
    engine.reload()
    engine.run("crm")
    assert count(db, "sync_delivery", "connection = 'erp' AND status = 'pending'") == 0
    engine.close()


def test_cli_disconnect_refuses_with_one_line_then_removes(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    assert spojka_cli("init", env=env).returncode == 0
    folder = tmp_path / "in"
    write_accounts(folder, 5, bad={3})
    mapping = tmp_path / "crm.yaml"
    mapping.write_text(CRM_MAPPING.format(direction="in"), encoding="utf-8")
    streams = {"accounts": {"entity": "Account", "cursor_field": "zmeneno"}}
    connect = [
        "sync",
        "connect",
        "crm",
        "--kind",
        "file",
        "--mapping",
        str(mapping),
        "-o",
        f"path={folder}",
        "-o",
        f"streams={json.dumps(streams)}",
    ]
    assert spojka_cli(*connect, env=env).returncode == 0
    assert spojka_cli("sync", "run", "crm", env=env).returncode == 0

    refused = spojka_cli("sync", "disconnect", "crm", env=env)
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert "connection 'crm' has open work" in line and "1 open dead letter" in line
    assert "--force" in line

    removed = spojka_cli("sync", "disconnect", "crm", "--force", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "connection crm removed" in removed.stdout
    assert "1 dead letter(s) discarded" in removed.stdout
    assert "4 link(s) kept" in removed.stdout
    assert "crm" not in spojka_cli("sync", "connections", env=env).stdout
    unknown = spojka_cli("sync", "disconnect", "crm", env=env)
    assert unknown.returncode == 1 and "no connection 'crm'" in unknown.stderr

    # added again: the records are found through the kept links, none is created twice
    assert spojka_cli(*connect, env=env).returncode == 0
    assert spojka_cli("sync", "run", "crm", env=env).returncode == 0
    db = sqlite3.connect(tmp_path / "data" / "spojka.sqlite")
    try:
        assert db.execute("SELECT count(*) FROM sync_record").fetchone() == (4,)
        actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY seq")]
    finally:
        db.close()
    assert "connection.delete" in actions
