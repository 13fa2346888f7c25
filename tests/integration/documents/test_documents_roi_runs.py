"""`spojka roi --from-runs` measures volume, automation and costs from the run records."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from typer.testing import CliRunner

from spojka.cli.main import app
from spojka.core.db import make_engine, session_factory, transaction, upgrade, utcnow
from spojka.runtime.models import FlowRun


def test_roi_from_run_records(db_url: str, tmp_path: Path) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    now = utcnow()
    with transaction(session_factory(engine)) as s:
        for i in range(10):
            s.add(
                FlowRun(
                    workflow_id=f"invoice-{i}",
                    flow="invoice_intake",
                    started_at=now - timedelta(days=1),
                    ended_at=now - timedelta(days=1),
                    outcome="automated" if i < 8 else "approved",
                    human_seconds=0.0 if i < 8 else 360.0,
                    model_cost=1.5,
                )
            )
        s.add(
            FlowRun(
                workflow_id="old",
                flow="invoice_intake",
                started_at=now - timedelta(days=90),
                outcome="automated",
            )
        )
    engine.dispose()
    env = {
        "SPOJKA_DATA_DIR": str(tmp_path / "data"),
        "SPOJKA_DATABASE_URL": db_url,
        "SPOJKA_SECRET_KEY": Fernet.generate_key().decode(),
    }
    args = "roi --from-runs --period 30d --flow invoice_intake --minutes 6 --rate 400"
    result = CliRunner().invoke(app, args.split(), env=env)
    assert result.exit_code == 0, result.output
    # 10 runs in 30 days → 10 a month, 8 automated; 10 × 6 min = 1 h manual, 0.8 h saved → 0
    assert "10 finished runs (8 without a person)" in result.stdout
    assert "manual work:        1 h" in result.stdout
    assert "hours saved:        0 h" in result.stdout
    # exceptions: 2 × 6 min of people = 0.2 h × 400 = 80; model cost 15
    assert "monthly costs:      95 Kč" in result.stdout
