"""The audit chain notices any altered, inserted or deleted entry, on both databases."""

from __future__ import annotations

import json

import sqlalchemy as sa

from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.governance import audit
from tests.support import cli_env, spojka_cli


def _write_entries(app: Spojka, n: int = 5) -> None:
    with transaction(app.sessions) as session:
        for i in range(n):
            audit.record(
                session,
                actor="jana",
                role="approver",
                action="invoice.approve",
                object_type="invoice",
                object_id=f"FV-2025-{i:04d}",
                before={"state": "draft"},
                after={"state": "approved", "amount": "12100.00"},
                reason="Souhlasí s objednávkou",
            )


def _verify(app: Spojka) -> audit.ChainReport:
    with transaction(app.sessions) as session:
        return audit.verify(session)


def test_untouched_chain_verifies(spojka_app: Spojka):
    _write_entries(spojka_app)
    report = _verify(spojka_app)
    assert report.ok and report.entries == 5


def test_altered_entry_is_reported(spojka_app: Spojka):
    _write_entries(spojka_app)
    with spojka_app.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET reason = 'nic' WHERE seq = 3"))
    report = _verify(spojka_app)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "altered" in (report.problem or "")


def test_deleted_entry_is_reported(spojka_app: Spojka):
    _write_entries(spojka_app)
    with spojka_app.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))
    report = _verify(spojka_app)
    assert not report.ok and report.first_bad_seq == 2
    assert "deleted" in (report.problem or "")


def test_inserted_entry_is_reported(spojka_app: Spojka):
    _write_entries(spojka_app)
    with spojka_app.engine.begin() as conn:
        # A forger shifts later entries up and slips a row in with a self-made hash.
        conn.execute(sa.text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3"))
        conn.execute(sa.text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103"))
        row = conn.execute(sa.text("SELECT * FROM audit_log WHERE seq = 2")).mappings().one()
        values = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
        values.update(seq=3, actor="mallory", prev_hash=row["hash"], hash="f" * 64)
        columns = ", ".join(values)
        params = ", ".join(f":{k}" for k in values)
        conn.execute(sa.text(f"INSERT INTO audit_log ({columns}) VALUES ({params})"), values)
    report = _verify(spojka_app)
    assert not report.ok and report.first_bad_seq == 3


def test_deleting_the_newest_entries_is_reported(spojka_app: Spojka):
    _write_entries(spojka_app)
    with spojka_app.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq >= 4"))
    report = _verify(spojka_app)
    assert not report.ok
    assert "end" in (report.problem or "")


def test_cli_verify_exits_non_zero_on_tampering(spojka_app: Spojka, db_url: str):
    _write_entries(spojka_app)
    env = cli_env(spojka_app.settings.data_dir, db_url)
    ok = spojka_cli("audit", "verify", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "intact: 5 entries" in ok.stdout
    with spojka_app.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"))
    bad = spojka_cli("audit", "verify", env=env)
    assert bad.returncode == 1
    assert "entry 4 was altered" in bad.stdout
