"""Golden values back to their owners through the sync engine; in-system duplicates flagged.

Two file-connector systems (folders of CSV): ``crm`` owns name and e-mail, ``erp`` owns IČO.
Runs on SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from spojka.api.app import create_app
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import make_engine, transaction, upgrade
from spojka.core.settings import load_settings
from spojka.governance import tokens
from spojka.governance.models import Role
from spojka.quality import service
from spojka.quality.models import QualityDuplicateLink
from spojka.quality.propagate import propagate
from spojka.quality.router import router
from spojka.sync import service as sync_service
from spojka.sync.engine import SyncEngine

CRM_ROWS = [
    # the CRM lost the e-mail of Novák; the ERP has it
    {"id": "c1", "nazev": "Novák a syn s.r.o.", "ic": "25596641", "email": "",
     "zmeneno": "2026-03-02T10:00:00"},
    # the same company typed in again by a colleague: a duplicate inside the CRM
    {"id": "c2", "nazev": "Novák a syn, s.r.o.", "ic": "25596641", "email": "",
     "zmeneno": "2026-01-15T09:00:00"},
    {"id": "c3", "nazev": "Svoboda stavby a.s.", "ic": "27082440",
     "email": "info@svobodastavby.cz", "zmeneno": "2026-02-01T08:00:00"},
]  # fmt: skip
ERP_ROWS = [
    # ERP spells the name its own way (the CRM owns the name: never written to ERP)
    {"id": "e1", "name": "NOVÁK A SYN", "ico": "25596641", "email": "fakturace@novakasyn.cz",
     "zmeneno": "2026-02-20T12:00:00"},
]  # fmt: skip

MAPPING = """
mapping: {name}
version: 1
streams:
  accounts:
    entity: Account
    direction: in
    fields:
      name: {col_name}
      ico: {col_ico}
      email:
        from: email
        default: null
    outbound:
      fields:
        {col_name}: name
        {col_ico}: ico
        email: email
"""


def _write(folder: Path, rows: list[dict[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "accounts.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        # the file connector keeps each write's idempotency key in its own column
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "_idempotency_key"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _current(path: Path) -> dict[str, dict[str, str]]:
    """What the system shows: the last row of each id (the file connector appends)."""
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def _setup(db_url: str, tmp_path: Path) -> tuple[sa.Engine, SyncEngine, Path, Path]:
    upgrade(db_url)
    db = make_engine(db_url)
    crm_csv = _write(tmp_path / "crm", CRM_ROWS)
    erp_csv = _write(tmp_path / "erp", ERP_ROWS)
    for name, path, col_name, col_ico in (
        ("crm", crm_csv, "nazev", "ic"),
        ("erp", erp_csv, "name", "ico"),
    ):
        sync_service.save_connection(
            db=db,
            name=name,
            kind="file",
            config={
                "path": str(path.parent),
                "streams": {"accounts": {"entity": "Account", "cursor_field": "zmeneno"}},
            },
            mapping_yaml=MAPPING.format(name=name, col_name=col_name, col_ico=col_ico),
        )
    # sync declares name and IČO; e-mail is left to the quality survivorship owner (crm)
    sync_service.set_owner(db=db, entity="Account", field="name", owner="crm")
    sync_service.set_owner(db=db, entity="Account", field="ico", owner="erp")
    engine = SyncEngine(db)
    engine.poll("crm")
    engine.poll("erp")
    with Session(db) as session, session.begin():
        for system, rows, cols in (
            ("crm", CRM_ROWS, {"name": "nazev", "ico": "ic", "email": "email"}),
            ("erp", ERP_ROWS, {"name": "name", "ico": "ico", "email": "email"}),
        ):
            for row in rows:
                service.ingest(
                    db_session=session,
                    entity="account",
                    system=system,
                    external_id=row["id"],
                    values={field: row[col] for field, col in cols.items()},
                    updated_at=datetime.fromisoformat(row["zmeneno"]),
                )
    return db, engine, crm_csv, erp_csv


def test_golden_values_reach_their_owner_only_once_and_duplicates_stay(
    db_url: str, tmp_path: Path
) -> None:
    db, engine, crm_csv, erp_csv = _setup(db_url, tmp_path)
    erp_before = erp_csv.read_bytes()

    report = propagate(db=db, entity="account", actor="jana.kralova", engine=engine)

    # the owned field is corrected in its owner, through a sync delivery
    changed = [(o.system, o.external_id, o.field) for o in report.outcomes if o.status == "changed"]
    assert changed == [("crm", "c1", "email")]
    assert sum(d.delivered for d in report.deliveries) == 1
    crm_now = _current(crm_csv)
    assert crm_now["c1"]["email"] == "fakturace@novakasyn.cz"
    assert crm_now["c1"]["nazev"] == "Novák a syn s.r.o."
    record = sync_service.find_record(db=db, system="crm", entity="Account", external_id="c1")
    assert record["data"]["email"] == "fakturace@novakasyn.cz"
    assert record["source_system"] == "quality:propagate"

    # the ERP does not own the name: reported, not written
    skipped = [
        (o.system, o.field, o.golden)
        for o in report.outcomes
        if o.status == "not owned: skipped" and o.field == "name"
    ]
    assert skipped == [("erp", "name", "Novák a syn s.r.o.")]
    assert erp_csv.read_bytes() == erp_before
    assert _current(erp_csv)["e1"]["name"] == "NOVÁK A SYN"

    # the duplicate inside the CRM is linked and flagged; both rows remain, c2 untouched
    [flag] = report.duplicates
    assert (flag.system, flag.external_id, flag.survivor_external_id) == ("crm", "c2", "c1")
    assert set(crm_now) == {"c1", "c2", "c3"}
    assert crm_now["c2"] == CRM_ROWS[1] | {"_idempotency_key": ""}
    with Session(db) as session:
        links = session.scalars(sa.select(QualityDuplicateLink)).all()
        assert [(x.system, x.external_id, x.survivor_external_id, x.status) for x in links] == [
            ("crm", "c2", "c1", "flagged")
        ]
        c1_cluster = session.scalars(
            sa.select(service.QualityRecord.cluster_id).where(
                service.QualityRecord.external_id.in_(["c1", "c2"])
            )
        ).all()
        assert len(set(c1_cluster)) == 1 and links[0].cluster_id == c1_cluster[0]

    # a second run writes nothing
    crm_after_first = crm_csv.read_bytes()
    again = propagate(db=db, entity="account", actor="jana.kralova", engine=engine)
    assert again.changed == 0
    assert all(d.delivered == 0 for d in again.deliveries)
    assert [f.new for f in again.duplicates] == [False]
    assert crm_csv.read_bytes() == crm_after_first
    assert erp_csv.read_bytes() == erp_before
    with Session(db) as session:
        assert len(session.scalars(sa.select(QualityDuplicateLink)).all()) == 1

    # the CRM shows the written row on its next poll: an echo, no conflict, no new version
    version = sync_service.find_record(db=db, system="crm", entity="Account", external_id="c1")[
        "version"
    ]
    engine.poll("crm")
    assert sync_service.list_conflicts(db=db) == []
    after = sync_service.find_record(db=db, system="crm", entity="Account", external_id="c1")
    assert after["version"] == version
    assert after["data"]["email"] == "fakturace@novakasyn.cz"


def test_cli_propagates_and_a_second_run_writes_nothing(db_url: str, tmp_path: Path) -> None:
    _, _, crm_csv, erp_csv = _setup(db_url, tmp_path)
    env = {
        **os.environ,
        "SPOJKA_DATABASE_URL": db_url,
        "SPOJKA_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "spojka", "quality", "propagate", "--actor", "jana.kralova"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "fakturace@novakasyn.cz" in first.stdout, first.stdout
    assert "changed 1" in first.stdout, first.stdout
    assert "not owned: skipped" in first.stdout
    assert "duplicate in crm: c2 = c1" in first.stdout and "flagged, kept" in first.stdout
    assert _current(crm_csv)["c1"]["email"] == "fakturace@novakasyn.cz"
    files = (crm_csv.read_bytes(), erp_csv.read_bytes())
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "changed" not in second.stdout and "already flagged" in second.stdout, second.stdout
    assert (crm_csv.read_bytes(), erp_csv.read_bytes()) == files


def test_api_propagate_needs_an_operator(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    instance: Spojka = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    _, _, crm_csv, _ = _setup(db_url, tmp_path)
    plain: dict[str, str] = {}
    with transaction(instance.sessions) as session:
        for role in (Role.viewer, Role.integrator):
            _, plain[role.value] = tokens.create(session, name=f"p-{role.value}", role=role)
    app = create_app(instance)
    if not any(getattr(r, "path", "") == "/api/v1/quality/propagate" for r in app.routes):
        app.include_router(router, prefix="/api/v1")  # until the lead mounts it
    try:
        with TestClient(app) as client:
            url = "/api/v1/quality/propagate"
            denied = client.post(url, json={}, headers=_auth(plain["viewer"]))
            assert denied.status_code == 403
            assert _current(crm_csv)["c1"]["email"] == ""
            done = client.post(url, json={"entity": "account"}, headers=_auth(plain["integrator"]))
            assert done.status_code == 200, done.text
            body = done.json()
            assert body["changed"] == 1
            assert body["duplicates"][0]["external_id"] == "c2"
            assert _current(crm_csv)["c1"]["email"] == "fakturace@novakasyn.cz"
            again = client.post(url, json={}, headers=_auth(plain["integrator"]))
            assert again.json()["changed"] == 0
    finally:
        reset()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_write_the_owner_refuses_lands_in_the_dead_letter_queue_and_replays(
    db_url: str, tmp_path: Path
) -> None:
    db, engine, crm_csv, _ = _setup(db_url, tmp_path)
    # the CRM export lost its idempotency-key column: the file connector refuses the write
    rows = list(_current(crm_csv).values())
    with crm_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[k for k in rows[0] if k != "_idempotency_key"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "_idempotency_key"} for r in rows)
    report = propagate(db=db, entity="account", actor="jana.kralova", engine=engine)
    assert report.changed == 1
    assert [d.dead_lettered for d in report.deliveries] == [1]
    [item] = sync_service.list_dead_letters(db=db, connection="crm")
    assert item.payload["email"] == "fakturace@novakasyn.cz"
    assert _current(crm_csv)["c1"]["email"] == ""
    # nothing is queued twice: the item waits for the operator, not for another propagation
    assert propagate(db=db, entity="account", actor="jana.kralova", engine=engine).changed == 0
    # the column is back: the replay delivers the same change
    _write(crm_csv.parent, CRM_ROWS)
    engine.reload()
    sync_service.replay_dead_letters(db=db, engine=engine, connection="crm", actor="jana.kralova")
    assert _current(crm_csv)["c1"]["email"] == "fakturace@novakasyn.cz"
    assert sync_service.list_dead_letters(db=db, connection="crm") == []
