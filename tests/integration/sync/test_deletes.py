"""Deletes: a record deleted in its owning system is tombstoned in the store (with its
version history) and deleted in the other systems only where the connection allows it;
otherwise a person decides. Every delete carries an idempotency key."""

from __future__ import annotations

import csv
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from spojka.connectors import registry
from spojka.connectors.base import Stream, WebhookEvent, WriteResult, raise_for_status
from spojka.connectors.base import transport_errors as http_errors
from spojka.sync import service
from spojka.sync.engine import SyncEngine
from tests.integration.sync.helpers import (
    TARGET_MAPPING,
    connect_crm,
    connect_erp,
    setup_db,
    write_accounts,
)
from tests.integration.sync.target import (
    HttpTargetConnector,
    TargetServer,
    TargetState,
    _handler,
)

ERP_SETTINGS = {"max_attempts": 3, "retry_base_s": 0.01, "retry_cap_s": 0.05}


class _Table(dict[str, dict[str, Any]]):
    """Records of one stream. The small server numbers a new record ``len(table) + 1``;
    counting deleted records too keeps ids from being reused, as in a real system."""

    deleted = 0

    def __len__(self) -> int:
        return super().__len__() + self.deleted


class DeletingState(TargetState):
    def __init__(self) -> None:
        super().__init__()
        self.records["accounts"] = _Table()
        self.deletes: Counter[str] = Counter()  # per idempotency key: real deletions


def _deleting_handler(state: DeletingState) -> type[BaseHTTPRequestHandler]:
    base = _handler(state)

    class Handler(base):  # type: ignore[valid-type,misc]
        def do_DELETE(self) -> None:
            stream, _, record_id = urlparse(self.path).path.strip("/").partition("/")
            key = self.headers.get("Idempotency-Key") or ""
            with state.lock:
                if key in state.idempotent:
                    state.replayed += 1
                    self._send(200, {"id": record_id})
                    return
                table = state.records.get(stream, _Table())
                if table.pop(record_id, None) is not None:
                    state.deletes[key] += 1
                    if isinstance(table, _Table):
                        table.deleted += 1
                state.idempotent[key] = (record_id, state.seq)
            self._send(200, {"id": record_id})

    return Handler


class DeletingTarget(TargetServer):
    """The small HTTP target, answering ``DELETE /<stream>/<id>`` too."""

    state: DeletingState

    def __init__(self) -> None:
        self.state = DeletingState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _deleting_handler(self.state))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


class DeletingConnector(HttpTargetConnector):
    kind = "test-http-deletes"

    def streams(self) -> list[Stream]:
        return [
            Stream(
                name=s.name,
                entity=s.entity,
                cursor_field=s.cursor_field,
                cursor_type=s.cursor_type,
                page_size=s.page_size,
                supports_deletes=True,
            )
            for s in super().streams()
        ]

    def delete(self, stream: Stream, external_id: str, *, idempotency_key: str) -> WriteResult:
        with http_errors("target"):
            r = self.client.delete(
                f"/{stream.name}/{external_id}", headers={"Idempotency-Key": idempotency_key}
            )
        raise_for_status(r, system="target")
        return WriteResult(external_id=external_id)


@pytest.fixture
def erp() -> Iterator[DeletingTarget]:
    registry.register("test-http-deletes", DeletingConnector)
    server = DeletingTarget()
    with server:
        yield server


def _connect_erp(db: sa.Engine, url: str, **settings: Any) -> None:
    service.save_connection(
        db=db,
        name="erp",
        kind="test-http-deletes",
        config={"base_url": url, "streams": {"accounts": "Account"}, "webhook_secret": "s"},
        settings={**ERP_SETTINGS, **settings},
        mapping_yaml=TARGET_MAPPING,
    )


def _drop_row(folder: Path, record_id: str) -> None:
    path = folder / "accounts.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["id"] != record_id]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _synced(db_url: str, tmp_path: Path, erp: DeletingTarget, **settings: Any) -> SyncEngine:
    folder = tmp_path / "crm"
    write_accounts(folder, 3)
    db = setup_db(db_url)
    connect_crm(db, folder)
    _connect_erp(db, erp.url, **settings)
    engine = SyncEngine(db)
    engine.run("crm")
    assert sorted(erp.state.all("accounts")) == ["1", "2", "3"]
    _drop_row(folder, "1")  # deleted in the CRM; its ERP copy is id 2
    return engine


def test_a_delete_waits_for_a_person_by_default_and_is_carried_out_once_decided(
    db_url: str, tmp_path: Path, erp: DeletingTarget
) -> None:
    engine = _synced(db_url, tmp_path, erp)
    db = engine.db
    [report] = service.reconcile(db=db, engine=engine, connection="crm", apply=True)
    assert report["deleted_in_source"] == 1

    record = service.find_record(db=db, system="crm", entity="Account", external_id="1")
    assert record["deleted"] is True and record["version"] == 2
    versions = service.history(db=db, canonical_id=record["canonical_id"])
    assert [v["source_system"] for v in versions] == ["crm", "crm:deleted"]
    assert versions[-1]["data"]["name"] == versions[0]["data"]["name"]  # tombstone keeps data

    engine.deliver("erp")
    assert "2" in erp.state.all("accounts")  # nothing deleted without a decision
    [decision] = service.list_conflicts(db=db)
    assert (decision.kind, decision.current_source, decision.incoming_system) == (
        "delete",
        "erp",
        "crm",
    )
    assert decision.current_value["name"] == record["data"]["name"]

    service.resolve_conflict(
        db=db, engine=engine, conflict_id=decision.id, pick="incoming", actor="petr.novak"
    )
    engine.deliver("erp")
    assert sorted(erp.state.all("accounts")) == ["1", "3"]
    assert sum(erp.state.deletes.values()) == 1

    # a second reconciliation and more deliveries change nothing and delete nothing again
    service.reconcile(db=db, engine=engine, connection="crm", apply=True)
    engine.deliver("erp")
    assert sum(erp.state.deletes.values()) == 1
    assert service.list_conflicts(db=db) == []


def test_keeping_the_copy_is_a_decision_too(
    db_url: str, tmp_path: Path, erp: DeletingTarget
) -> None:
    engine = _synced(db_url, tmp_path, erp)
    service.reconcile(db=engine.db, engine=engine, connection="crm", apply=True)
    [decision] = service.list_conflicts(db=engine.db)
    resolved = service.resolve_conflict(
        db=engine.db, engine=engine, conflict_id=decision.id, pick="current", actor="petr.novak"
    )
    assert resolved.status == "resolved"
    engine.deliver("erp")
    assert sorted(erp.state.all("accounts")) == ["1", "2", "3"]
    assert not erp.state.deletes


def test_an_allowed_delete_reaches_the_target_once_with_an_idempotency_key(
    db_url: str, tmp_path: Path, erp: DeletingTarget
) -> None:
    engine = _synced(db_url, tmp_path, erp, propagate_deletes=True)
    db = engine.db
    service.reconcile(db=db, engine=engine, connection="crm", apply=True)
    assert service.list_conflicts(db=db) == []
    with db.connect() as conn:
        [(key, status)] = conn.execute(
            sa.text(
                "SELECT idempotency_key, status FROM sync_delivery "
                "WHERE connection = 'erp' AND source_event LIKE '%deleted%'"
            )
        ).all()
    assert status == "pending"
    engine.deliver("erp")
    assert sorted(erp.state.all("accounts")) == ["1", "3"]
    assert erp.state.deletes == Counter({key: 1})

    # the delivery is replayed as if the worker had crashed before recording it
    with db.begin() as conn:
        conn.execute(
            sa.text("UPDATE sync_delivery SET status = 'pending' WHERE idempotency_key = :k"),
            {"k": key},
        )
        conn.execute(
            sa.text(
                "UPDATE sync_link SET written_hash = NULL, synced_version = 1 "
                "WHERE system = 'erp' AND external_id = '2'"
            )
        )
    engine.deliver("erp")
    assert erp.state.deletes == Counter({key: 1}) and erp.state.replayed == 1


def test_a_record_restored_in_its_owner_comes_back_everywhere(
    db_url: str, tmp_path: Path, erp: DeletingTarget
) -> None:
    engine = _synced(db_url, tmp_path, erp, propagate_deletes=True)
    db = engine.db
    service.reconcile(db=db, engine=engine, connection="crm", apply=True)
    engine.deliver("erp")
    assert sorted(erp.state.all("accounts")) == ["1", "3"]

    folder = tmp_path / "crm"
    restored = write_accounts(folder / "restored", 2)[1]  # the same row as before the delete
    with (folder / "accounts.csv").open("a", encoding="utf-8", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(restored)).writerow(
            {**restored, "zmeneno": "2026-02-01T08:00:00"}  # restored from the bin later
        )
    engine.run("crm")
    record = service.find_record(db=db, system="crm", entity="Account", external_id="1")
    assert record["deleted"] is False and record["version"] == 3
    assert record["links"]["erp"] == "4"  # created anew in the ERP, link moved to it
    accounts = erp.state.all("accounts")
    assert sorted(accounts) == ["1", "3", "4"] and accounts["4"]["name"] == restored["nazev"]
    assert service.list_conflicts(db=db) == []


EXPORT_MAPPING = """
mapping: export
version: 1
streams:
  accounts:
    entity: Account
    direction: out
    fields:
      name: name
      ico: ico
      email: email
"""


def test_a_delete_event_from_the_erp_removes_the_record_from_a_file_export(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    db = setup_db(db_url)
    connect_erp(db, target.url)
    out = tmp_path / "export"
    service.save_connection(
        db=db,
        name="export",
        kind="file",
        config={
            "path": str(out),
            "streams": {"accounts": {"entity": "Account", "format": "jsonl"}},
        },
        settings={"propagate_deletes": True},
        mapping_yaml=EXPORT_MAPPING,
    )
    for i, name in enumerate(["Alfa s.r.o.", "Beta a.s.", "Gama v.o.s."], start=1):
        target.state.records.setdefault("accounts", {})[str(i)] = {
            "id": str(i),
            "name": name,
            "version": i,
        }
    target.state.seq = 3
    engine = SyncEngine(db)
    engine.run("erp")
    path = out / "accounts.jsonl"

    def exported() -> list[str]:
        return [json.loads(line)["name"] for line in path.read_text("utf-8").splitlines()]

    assert exported() == ["Alfa s.r.o.", "Beta a.s.", "Gama v.o.s."]

    event = WebhookEvent(event_id="ev-1", stream="accounts", external_id="2", deleted=True)
    for _ in range(2):  # the same delete event, delivered twice, to a freshly started worker
        worker = SyncEngine(db)
        with db.begin() as conn:
            worker.ingest_events(conn, worker.runtime("erp"), [event])
        worker.deliver("export")
        worker.close()
    assert exported() == ["Alfa s.r.o.", "Gama v.o.s."]
    record = service.find_record(db=db, system="erp", entity="Account", external_id="2")
    assert record["deleted"] is True
    assert [
        v["source_system"] for v in service.history(db=db, canonical_id=record["canonical_id"])
    ] == [
        "erp",
        "erp:deleted",
    ]
    with db.connect() as conn:
        deletes = conn.execute(
            sa.text(
                "SELECT count(*) FROM sync_delivery WHERE connection = 'export' "
                "AND source_event LIKE '%deleted%' AND status = 'done'"
            )
        ).scalar()
    assert deletes == 1
