"""The file connector end to end (CSV in, XLSX out, reconciliation) and the CLI a user runs."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook
from prometheus_client import REGISTRY

from spojka.core.db import make_engine, upgrade
from spojka.sync import service
from spojka.sync.engine import SyncEngine
from tests.integration.sync.helpers import count, ico
from tests.support import cli_env, spojka_cli

CRM = """
mapping: crm
version: 2
streams:
  firmy:
    entity: odběratel
    fields:
      name: Název
      ico: IČO
      email: E-mail
"""

EXPORT = """
mapping: export
version: 1
streams:
  odberatele:
    entity: Account
    direction: out
    outbound:
      required: [nazev]
      fields:
        nazev: name
        ico: ico
"""


def _czech_csv(folder: Path, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["Název;IČO;E-mail"]
    lines += [f"Pekárna Kováč {i};{ico(i)};pekarna{i}@kovac.sk" for i in range(rows)]
    (folder / "firmy.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_csv_import_xlsx_export_and_reconcile(db_url: str, tmp_path: Path) -> None:
    _czech_csv(tmp_path / "in", 12)
    upgrade(db_url)
    db = make_engine(db_url)
    service.save_connection(
        db=db,
        name="crm",
        kind="file",
        mapping_yaml=CRM,
        config={
            "path": str(tmp_path / "in"),
            "delimiter": ";",
            "streams": {"firmy": {"primary_key": "IČO"}},
        },
    )
    service.save_connection(
        db=db,
        name="export",
        kind="file",
        mapping_yaml=EXPORT,
        config={
            "path": str(tmp_path / "out"),
            "streams": {
                "odberatele": {"entity": "Account", "format": "xlsx", "primary_key": "ico"}
            },
        },
    )
    engine = SyncEngine(db)
    result = engine.run("crm")
    assert result["streams"][0].stats.created == 12
    sheet = load_workbook(tmp_path / "out" / "odberatele.xlsx").worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("ico", "nazev") and len(rows) == 13
    assert {r[1] for r in rows[1:]} == {f"Pekárna Kováč {i}" for i in range(12)}
    record = service.find_record(db=db, system="crm", entity="Account", external_id=ico(3))
    assert record["mapping_version"] == "crm@2"  # every record remembers its mapping

    # a row disappears from the source: reconciliation finds it and, asked to, applies it
    _czech_csv(tmp_path / "in", 11)
    [report] = service.reconcile(db=db, engine=engine, connection="crm")
    assert (report["remote"], report["linked"], report["deleted_in_source"]) == (11, 12, 1)
    assert report["deleted_ids"] == [ico(11)]
    service.reconcile(db=db, engine=engine, connection="crm", apply=True)
    assert count(db, "sync_record", "deleted = true") == 1

    health = service.health(db=db, connection="crm", engine=engine)
    assert health["system"]["ok"] and health["dlq_depth"] == 0
    assert health["streams"][0]["records_total"] == 12 and health["streams"][0]["lag_s"] >= 0
    assert (
        REGISTRY.get_sample_value(
            "spojka_sync_records_total",
            {"connection": "crm", "stream": "firmy", "outcome": "created"},
        )
        >= 12
    )
    engine.close()


def test_cli_mapping_check_sync_run_dlq_and_reconcile(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    assert spojka_cli("db", "upgrade", env=env).returncode == 0
    bad = tmp_path / "crm.yaml"
    bad.write_text(CRM.replace("      name: Název\n", "      nazev: Název\n"), encoding="utf-8")
    checked = spojka_cli("mapping", "check", str(bad), env=env)
    assert checked.returncode == 1
    assert f"{bad}:8: Account.nazev: Account has no field 'nazev'" in checked.stderr
    assert "mandatory field 'name' of Account is not mapped" in checked.stderr

    good = tmp_path / "crm-ok.yaml"
    good.write_text(CRM, encoding="utf-8")
    assert "ok, crm@2: firmy→Account" in spojka_cli("mapping", "check", str(good), env=env).stdout
    _czech_csv(tmp_path / "in", 5)
    with (tmp_path / "in" / "firmy.csv").open("a", encoding="utf-8") as fh:
        fh.write("Chybná firma;12345678;x@y.cz\n")  # invalid IČO: a poison record
    preview = spojka_cli(
        "mapping",
        "preview",
        str(good),
        "--sample",
        "2",
        "--path",
        str(tmp_path / "in"),
        "--delimiter",
        ";",
        env=env,
    )
    assert preview.returncode == 0 and preview.stdout.count("before:") == 2
    connected = spojka_cli(
        "sync",
        "connect",
        "crm",
        "--kind",
        "file",
        "--mapping",
        str(good),
        "-o",
        f"path={tmp_path / 'in'}",
        "-o",
        "delimiter=;",
        "-o",
        'streams={"firmy": {"primary_key": "IČO"}}',
        env=env,
    )
    assert connected.returncode == 0, connected.stderr
    audited = spojka_cli("audit", "list", env=env)
    assert "connection.create" in audited.stdout and "connection:crm" in audited.stdout
    assert spojka_cli("audit", "verify", env=env).returncode == 0
    run = spojka_cli("sync", "run", "crm", env=env)
    assert run.returncode == 0, run.stderr
    assert "firmy" in run.stdout
    listed = spojka_cli("dlq", "list", env=env)
    assert "12345678" in listed.stdout or "ico" in listed.stdout
    shown = spojka_cli("dlq", "show", "1", env=env)
    assert '"mapping_version": "crm@2"' in shown.stdout
    assert spojka_cli("dlq", "discard", "1", "--reason", "test", env=env).returncode == 0
    assert "discarded" in spojka_cli("dlq", "list", "--all", env=env).stdout
    reconciled = spojka_cli("reconcile", "crm", env=env)
    assert reconciled.returncode == 0 and "Account" in reconciled.stdout
    status = spojka_cli("sync", "status", env=env)
    assert status.returncode == 0 and "crm" in status.stdout
    assert spojka_cli("conflicts", "list", env=env).returncode == 0
