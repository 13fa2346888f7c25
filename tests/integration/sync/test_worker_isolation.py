"""One target connection that cannot be loaded never holds up delivery to the others."""

from __future__ import annotations

import time
from pathlib import Path

from spojka.sync import service
from spojka.sync.engine import SyncEngine
from spojka.sync.webhooks import WebhookWorker
from tests.integration.sync.helpers import (
    TARGET_MAPPING,
    connect_crm,
    connect_erp,
    setup_db,
    write_accounts,
)
from tests.integration.sync.target import TargetServer


def test_a_target_whose_secret_does_not_resolve_does_not_stop_the_others(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    db = setup_db(db_url)
    write_accounts(tmp_path / "crm", 20)
    connect_crm(db, tmp_path / "crm")
    connect_erp(db, target.url)
    # sorted first among the subscribers; its secret reference names a variable nobody set
    service.save_connection(
        db=db,
        name="archive",
        kind="test-http",
        config={
            "base_url": target.url,
            "streams": {"accounts": "Account"},
            "webhook_secret": "env:SPOJKA_TEST_NEVER_SET",
        },
        mapping_yaml=TARGET_MAPPING.replace("mapping: erp", "mapping: archive"),
    )
    engine = SyncEngine(db)
    engine.poll("crm")
    worker = WebhookWorker(engine, interval=0.05, settle=0.0)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while target.state.writes < 20:
            assert time.monotonic() < deadline, f"erp got {target.state.writes} of 20 writes"
            worker.wake()
            time.sleep(0.05)
    finally:
        worker.stop()
        engine.close()
    health = service.health(db=db, connection="archive", check_system=False)
    assert health["ok"] is False
    assert "SPOJKA_TEST_NEVER_SET is not set" in health["system"]["detail"]
