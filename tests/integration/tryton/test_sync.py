"""Tryton through Spojka's sync engine: records reach the canonical store, edits arrive as
new versions, and a deletion in Tryton is found by reconciliation."""

from __future__ import annotations

from pathlib import Path

import pytest

import spojka.connectors.tryton as package
from spojka.connectors.tryton.connector import TrytonConnector
from spojka.core.db import make_engine, upgrade
from spojka.localsystems.tryton import TrytonServer
from spojka.sync import service
from spojka.sync.engine import SyncEngine

pytestmark = pytest.mark.tryton


def test_parties_sync_update_and_delete(tryton_server: TrytonServer, sqlite_url: str) -> None:
    upgrade(sqlite_url)
    db = make_engine(sqlite_url)
    config = {
        "url": tryton_server.url,
        "database": tryton_server.database,
        "user": tryton_server.user,
        "password": tryton_server.password,
    }
    mapping = (Path(package.__file__).parent / "mappings" / "tryton.yaml").read_text()
    service.save_connection(db=db, name="erp", kind="tryton", config=config, mapping_yaml=mapping)
    tryton = TrytonConnector(config)
    parties = tryton.stream("parties")
    kept = tryton.write(
        parties,
        {"name": "Vodárenská společnost Žďár, a.s.", "ico": "27074358", "city": "Žďár"},
        external_id=None,
        idempotency_key="sync-kept",
    )
    doomed = tryton.write(
        parties, {"name": "Zaniklá firma s.r.o."}, external_id=None, idempotency_key="sync-gone"
    )
    engine = SyncEngine(db)
    try:
        engine.run("erp", streams=["parties"])
        stored = service.find_record(
            db=db, system="erp", entity="Account", external_id=kept.external_id
        )
        assert stored["data"]["name"] == "Vodárenská společnost Žďár, a.s."
        assert stored["data"]["ico"] == "27074358"
        assert stored["data"]["address"]["city"] == "Žďár"
        assert stored["mapping_version"] == "tryton@1"

        tryton.write(
            parties,
            {"name": "Vodárenská společnost Žďár nad Sázavou, a.s."},
            external_id=kept.external_id,
            idempotency_key="sync-rename",
        )
        engine.run("erp", streams=["parties"])
        renamed = service.find_record(
            db=db, system="erp", entity="Account", external_id=kept.external_id
        )
        assert renamed["data"]["name"] == "Vodárenská společnost Žďár nad Sázavou, a.s."
        assert renamed["version"] > stored["version"]

        tryton.client.delete("party.party", [int(doomed.external_id)])
        report = service.reconcile(db=db, engine=engine, connection="erp", apply=True)
        accounts = next(r for r in report if r["stream"] == "parties")
        assert accounts["deleted_ids"] == [doomed.external_id]
        gone = service.find_record(
            db=db, system="erp", entity="Account", external_id=doomed.external_id
        )
        assert gone["deleted"]
        still = service.find_record(
            db=db, system="erp", entity="Account", external_id=kept.external_id
        )
        assert not still["deleted"]
    finally:
        engine.close()
        tryton.close()
        db.dispose()
