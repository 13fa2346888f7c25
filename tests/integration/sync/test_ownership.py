"""Ownership and conflicts: no last-write-wins; a person resolves, the decision is audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from spojka.sync import service
from spojka.sync.engine import SyncEngine
from tests.integration.sync.helpers import (
    connect_crm,
    connect_erp,
    count,
    edit_csv,
    setup_db,
    write_accounts,
)
from tests.integration.sync.target import TargetServer


def _synced(db_url: str, tmp_path: Path, target: TargetServer) -> tuple[SyncEngine, Path]:
    folder = tmp_path / "crm"
    write_accounts(folder, 5)
    db = setup_db(db_url)
    connect_crm(db, folder)
    connect_erp(db, target.url)
    engine = SyncEngine(db)
    engine.run("crm")
    assert len(target.state.all("accounts")) == 5
    return engine, folder


def test_concurrent_edits_of_one_field_raise_a_conflict_and_overwrite_nothing(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    engine, folder = _synced(db_url, tmp_path, target)
    db = engine.db
    # the same field is edited in both systems before the next sync
    edit_csv(folder, "1", nazev="Novák a dcera s.r.o.")
    target.state.edit("accounts", "2", name="NOVÁK A SYN (ERP)")  # target id 2 = source id 1
    engine.poll("crm")  # CRM's edit lands first
    engine.poll("erp")  # ERP's edit of the same field, based on the old value
    [conflict] = service.list_conflicts(db=db)
    assert conflict.kind == "concurrent" and conflict.field == "name"
    assert (conflict.current_value, conflict.current_source) == ("Novák a dcera s.r.o.", "crm")
    assert (conflict.incoming_value, conflict.incoming_system) == ("NOVÁK A SYN (ERP)", "erp")
    assert conflict.current_at is not None and conflict.incoming_at is not None
    record = service.find_record(db=db, system="erp", entity="Account", external_id="2")
    assert record["data"]["name"] == "Novák a dcera s.r.o."
    # the pending write of CRM's value to ERP is held: ERP keeps its value until resolved
    engine.deliver("erp")
    assert target.state.all("accounts")["2"]["name"] == "NOVÁK A SYN (ERP)"

    resolved = service.resolve_conflict(
        db=db,
        engine=engine,
        conflict_id=conflict.id,
        value="Novák a syn, s.r.o.",
        actor="jana.kralova",
        reason="obchodní rejstřík",
    )
    assert resolved.status == "resolved" and resolved.resolved_by == "jana.kralova"
    engine.deliver("erp")
    assert target.state.all("accounts")["2"]["name"] == "Novák a syn, s.r.o."
    record = service.find_record(db=db, system="erp", entity="Account", external_id="2")
    assert record["data"]["name"] == "Novák a syn, s.r.o."
    assert record["source_system"] == "resolution:jana.kralova"
    from sqlalchemy.orm import Session

    from spojka.governance import audit

    with Session(db) as session:
        entries = audit.list_entries(session, object_id=record["canonical_id"])
    assert [e.action for e in entries] == ["sync.conflict.resolve"]
    assert entries[0].after == {"name": "Novák a syn, s.r.o."}
    # the ERP echo of the resolved value starts nothing new
    writes = target.state.writes
    engine.run("erp")
    assert target.state.writes == writes and service.list_conflicts(db=db) == []
    engine.close()


@pytest.mark.parametrize("mode", ["conflict", "reject"])
def test_non_owner_change_of_an_owned_field_is_never_written_to_the_owner(
    db_url: str, tmp_path: Path, target: TargetServer, mode: str
) -> None:
    engine, _folder = _synced(db_url, tmp_path, target)
    db = engine.db
    service.set_owner(db=db, entity="Account", field="ico", owner="crm", on_violation=mode)
    engine.reload()
    before = service.find_record(db=db, system="erp", entity="Account", external_id="3")
    deliveries = count(db, "sync_delivery")
    # ERP changes the IČO (owned by CRM) and the e-mail (not owned by anyone)
    target.state.edit("accounts", "3", ico="25596641", email="fakturace@firma.cz")
    engine.run("erp")
    after = service.find_record(db=db, system="erp", entity="Account", external_id="3")
    assert after["data"]["ico"] == before["data"]["ico"]  # the owner's value stays
    assert after["data"]["email"] == "fakturace@firma.cz"  # an unowned field flows
    assert count(db, "sync_delivery", "connection = 'crm'") == 0
    assert count(db, "sync_delivery") == deliveries  # nothing queued back to anyone
    conflicts = service.list_conflicts(db=db, status=None)
    assert [(c.field, c.kind, c.incoming_value) for c in conflicts] == [
        ("ico", "non_owner", "25596641")
    ]
    assert conflicts[0].status == ("open" if mode == "conflict" else "rejected")
    engine.close()
