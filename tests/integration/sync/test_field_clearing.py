"""Field clearing: a value emptied in the source empties the canonical record and is written
to the targets as a clear; a field absent from a partial payload is left as it is."""

from __future__ import annotations

import json
from pathlib import Path

from spojka.sync import service
from spojka.sync.engine import SyncEngine
from tests.integration.sync.helpers import (
    connect_crm,
    connect_erp,
    edit_csv,
    setup_db,
    write_accounts,
)
from tests.integration.sync.target import TargetServer


def test_an_emptied_csv_cell_clears_the_field_in_the_store_and_in_the_target(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    folder = tmp_path / "crm"
    write_accounts(folder, 3)
    db = setup_db(db_url)
    connect_crm(db, folder)
    connect_erp(db, target.url)
    engine = SyncEngine(db)
    engine.run("crm")
    assert target.state.all("accounts")["2"]["email"] == "obchod1@firma1.cz"

    edit_csv(folder, "1", email="")  # the CRM user deletes the e-mail address
    engine.run("crm")

    record = service.find_record(db=db, system="crm", entity="Account", external_id="1")
    assert "email" not in record["data"]
    assert record["version"] == 2
    before, after = service.history(db=db, canonical_id=record["canonical_id"])
    assert before["data"]["email"] == "obchod1@firma1.cz" and "email" not in after["data"]
    erp = target.state.all("accounts")
    assert erp["2"]["email"] is None  # written as a clear, not skipped as missing
    assert erp["2"]["name"] == record["data"]["name"]
    assert erp["1"]["email"] == "obchod0@firma0.cz"  # other records untouched
    assert service.list_conflicts(db=db) == []


def test_a_partial_record_leaves_absent_fields_and_clears_explicit_nulls(
    db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "crm"
    folder.mkdir()
    path = folder / "accounts.jsonl"

    def write(*records: dict[str, object]) -> None:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    write(
        {
            "id": "7",
            "nazev": "Dvořák s.r.o.",
            "ic": "25596641",
            "email": "info@dvorak.cz",
            "zmeneno": "2026-01-01T08:00:00",
        }
    )
    db = setup_db(db_url)
    connect_crm(db, folder)
    engine = SyncEngine(db)
    engine.poll("crm")

    # a later payload without `email` (and without `ic`): both stay as they are
    write({"id": "7", "nazev": "Dvořák a syn s.r.o.", "zmeneno": "2026-01-02T08:00:00"})
    engine.poll("crm")
    record = service.find_record(db=db, system="crm", entity="Account", external_id="7")
    assert record["data"]["name"] == "Dvořák a syn s.r.o."
    assert record["data"]["email"] == "info@dvorak.cz"
    assert record["data"]["ico"] == "25596641"

    # an explicit null (or "") empties the field
    write(
        {
            "id": "7",
            "nazev": "Dvořák a syn s.r.o.",
            "email": None,
            "ic": "",
            "zmeneno": "2026-01-03T08:00:00",
        }
    )
    engine.poll("crm")
    record = service.find_record(db=db, system="crm", entity="Account", external_id="7")
    assert record["data"] == {"name": "Dvořák a syn s.r.o.", "kind": "customer"}
    assert [v["version"] for v in service.history(db=db, canonical_id=record["canonical_id"])] == [
        1,
        2,
        3,
    ]
