"""A target that is down: retries, DLQ after the limit, replay once it is back; poison
records never block the rest; echoes of our own writes start no second round."""

from __future__ import annotations

from pathlib import Path

from spojka.sync import service
from spojka.sync.engine import SyncEngine
from tests.integration.sync.helpers import connect_crm, connect_erp, count, setup_db, write_accounts
from tests.integration.sync.target import TargetServer


def test_503_then_dlq_then_replay_delivers_everything_once(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    rows = write_accounts(tmp_path / "crm", 30, bad={7})  # record 7 has an invalid IČO
    db = setup_db(db_url)
    connect_crm(db, tmp_path / "crm")
    connect_erp(db, target.url)
    engine = SyncEngine(db)

    target.state.down = True
    result = engine.run("crm")
    assert result["streams"][0].stats.created == 29
    assert result["streams"][0].stats.dead_lettered == 1  # the poison record, rest flowed
    erp = next(d for d in result["deliveries"] if d.connection == "erp")
    assert erp.dead_lettered == 29 and erp.delivered == 0
    assert target.state.failed == 29 * 3  # max_attempts=3 per record, then the DLQ
    assert target.state.all("accounts") == {}
    outbound = [d for d in service.list_dead_letters(db=db, connection="erp")]
    assert len(outbound) == 29
    item = outbound[0]
    assert item.direction == "outbound" and item.attempts == 3
    assert item.error_class == "TransientError" and "503" in item.error
    assert item.payload["name"] and item.mapping_version == "erp@1" and item.trace_id
    assert '"status":503' in (item.response or "")
    inbound = service.list_dead_letters(db=db, connection="crm")
    assert [d.external_id for d in inbound] == ["7"] and "ico" in inbound[0].error

    target.state.down = False
    counts = service.replay_dead_letters(db=db, engine=engine, connection="erp")
    assert counts == {"replayed": 29, "failed_again": 0}
    stored = target.state.all("accounts")
    assert len(stored) == 29
    assert sorted(r["ico"] for r in stored.values()) == sorted(
        r["ic"] for r in rows if r["id"] != "7"
    )
    # replaying again changes nothing: no open items, no new writes
    writes = target.state.writes
    assert service.replay_dead_letters(db=db, engine=engine, connection="erp") == {
        "replayed": 0,
        "failed_again": 0,
    }
    assert target.state.writes == writes
    assert count(db, "sync_delivery", "status <> 'done'") == 0
    # a full re-read meets the poison record again: still one open item, not two
    service.reset_cursor(db=db, connection="crm")
    engine.run("crm")
    assert len(service.list_dead_letters(db=db, connection="crm")) == 1
    assert target.state.writes == writes
    engine.close()


def test_poison_record_at_the_target_goes_to_dlq_alone(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    folder = tmp_path / "crm"
    write_accounts(folder, 10)
    text = (folder / "accounts.csv").read_text(encoding="utf-8")
    (folder / "accounts.csv").write_text(
        text.replace("a syn s.r.o. 4,", "POISON s.r.o.,"), encoding="utf-8"
    )
    db = setup_db(db_url)
    connect_crm(db, folder)
    connect_erp(db, target.url)
    engine = SyncEngine(db)
    engine.run("crm")
    assert len(target.state.all("accounts")) == 9
    [item] = service.list_dead_letters(db=db, connection="erp")
    assert item.error_class == "ValidationError" and item.attempts == 1  # permanent: no retry
    assert target.state.failed == 0
    engine.close()


def test_own_write_echoing_back_starts_no_second_round(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    write_accounts(tmp_path / "crm", 20)
    db = setup_db(db_url)
    connect_crm(db, tmp_path / "crm")
    connect_erp(db, target.url)
    engine = SyncEngine(db)
    engine.run("crm")
    assert target.state.writes == 20
    versions = count(db, "sync_record_version")

    # the target reports our own writes back through polling …
    report = engine.run("erp")
    stats = report["streams"][0].stats
    assert stats.echoes == 20 and stats.created == 0 and stats.applied == 0
    # … and a second crm run and a second erp run change nothing either
    engine.run("crm")
    engine.run("erp")
    assert target.state.writes == 20
    assert count(db, "sync_record_version") == versions
    assert count(db, "sync_delivery") == 20
    engine.close()


def test_real_change_in_the_target_flows_in_once(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    write_accounts(tmp_path / "crm", 3)
    db = setup_db(db_url)
    connect_crm(db, tmp_path / "crm")
    connect_erp(db, target.url)
    engine = SyncEngine(db)
    engine.run("crm")
    target.state.edit("accounts", "2", email="nova.adresa@firma.cz")
    stats = engine.run("erp")["streams"][0].stats
    assert stats.applied == 1
    record = service.find_record(db=db, system="erp", entity="Account", external_id="2")
    assert record["data"]["email"] == "nova.adresa@firma.cz" and record["version"] == 2
    assert [
        h["source_system"] for h in service.history(db=db, canonical_id=record["canonical_id"])
    ] == ["crm", "erp"]
    assert target.state.writes == 3  # not written back to where it came from
    engine.close()


def test_rate_limited_target_shares_one_bucket_between_workers(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    write_accounts(tmp_path / "crm", 12)
    db = setup_db(db_url)
    connect_crm(db, tmp_path / "crm")
    connect_erp(db, target.url, settings={"rate_per_s": 1000, "burst": 5})
    first, second = SyncEngine(db), SyncEngine(db)  # two workers, one database
    first.poll("crm")
    a = first.deliver("erp", until_idle=True, max_rounds=1)
    b = second.deliver("erp")
    assert a.delivered + b.delivered == 12 and len(target.state.all("accounts")) == 12
    assert count(db, "sync_rate_bucket", "connection = 'erp'") == 1
    with db.connect() as conn:
        import sqlalchemy as sa

        tokens = conn.execute(sa.text("SELECT tokens FROM sync_rate_bucket")).scalar()
    assert 0 <= tokens <= 5
    first.close()
    second.close()
