"""The demo's customer base loads into BottleCRM and passes the canonical model's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from spojka.connectors.bottlecrm.connector import default_mapping
from spojka.core.db import make_engine, upgrade
from spojka.localsystems.bottlecrm import BottleCRMInstance, seed_demo
from spojka.sync import service
from spojka.sync.engine import SyncEngine

pytestmark = pytest.mark.crm


def test_demo_data_syncs_without_a_single_dead_letter(
    crm: BottleCRMInstance, tmp_path: Path
) -> None:
    created = seed_demo(crm)
    url = f"sqlite:///{tmp_path / 'spojka.sqlite'}"
    upgrade(url)
    db = make_engine(url)
    service.save_connection(
        db=db,
        name="crm",
        kind="bottlecrm",
        config={"url": crm.url, "token": crm.personal_token},
        mapping_yaml=default_mapping(),
    )
    engine = SyncEngine(db)
    reports = engine.poll("crm")
    assert sum(r.stats.dead_lettered for r in reports) == 0
    accounts = [
        service.find_record(db=db, system="crm", entity="Account", external_id=i)["data"]
        for i in created["accounts"]
    ]
    # IČO check digits and DIČ formats were validated by the canonical Account contract.
    assert {a["ico"] for a in accounts} >= {"25596641"}
    assert all(a["dic"].startswith(("CZ", "SK")) for a in accounts)
    stages = sorted(
        service.find_record(db=db, system="crm", entity="Opportunity", external_id=i)["data"][
            "stage"
        ]
        for i in created["opportunities"]
    )
    assert stages == ["lead", "negotiation", "negotiation", "proposal", "proposal", "qualified"]
    engine.close()
    db.dispose()
