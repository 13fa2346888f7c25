"""Id-only webhooks (``{"event_id", "stream", "id"}`` without the record): the inbox fetches
the record from the system while processing, de-duplicated and versioned like any change;
a fetch that fails for a while is retried, one that fails for good goes to the DLQ and is
replayed from there. Against the small HTTP system, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spojka.api.app import create_app
from spojka.bootstrap import bootstrap, reset
from spojka.connectors.base import sign_payload
from spojka.core.settings import load_settings
from spojka.sync import router as sync_router
from spojka.sync import service, webhooks
from spojka.sync.engine import SyncEngine
from tests.integration.sync.helpers import connect_erp, count, ico, setup_db
from tests.integration.sync.target import TargetServer

SECRET = "whsec-erp"


def _id_only(event_id: str, record_id: str, **extra: Any) -> bytes:
    return json.dumps(
        {"event_id": event_id, "stream": "accounts", "id": record_id, **extra}
    ).encode()


def _headers(body: bytes) -> dict[str, str]:
    return {"X-Spojka-Signature": sign_payload(SECRET, body), "Content-Type": "application/json"}


def _company(target: TargetServer, record_id: str, name: str) -> int:
    return target.state.add(
        "accounts", record_id, name=name, ico=ico(int(record_id)), email=f"info@f{record_id}.cz"
    )


@pytest.fixture
def inbox(db_url: str, target: TargetServer) -> Iterator[SyncEngine]:
    """The inbox without the API: deliveries stored, then processed by the test itself."""
    engine = setup_db(db_url)
    connect_erp(engine, target.url, secret=SECRET)
    sync = SyncEngine(engine)
    yield sync
    sync.close()
    engine.dispose()


def _deliver(sync: SyncEngine, body: bytes) -> webhooks.Receipt:
    return webhooks.receive(engine=sync, connection="erp", headers=_headers(body), body=body)


def _process_until_settled(sync: SyncEngine) -> None:
    """Process the inbox, retries included, until nothing is pending (asynchronous by design)."""
    deadline = time.monotonic() + 60
    while count(sync.db, "sync_webhook_event", "status = 'pending'"):
        assert time.monotonic() < deadline, "webhook inbox was not settled"
        webhooks.process_pending(engine=sync)
        time.sleep(0.02)


def _stored_name(sync: SyncEngine, record_id: str) -> str | None:
    try:
        record = service.find_record(
            db=sync.db, system="erp", entity="Account", external_id=record_id
        )
    except Exception:
        return None
    name: str = record["data"]["name"]
    return name


def test_id_only_events_are_completed_from_the_system_once_and_versioned(
    db_url: str, tmp_path: Path, target: TargetServer
) -> None:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    instance = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    connect_erp(instance.engine, target.url, secret=SECRET)
    _company(target, "5", "Stavby Brno s.r.o.")
    db = instance.engine
    try:
        with TestClient(create_app(instance)) as client:

            def post(body: bytes) -> Any:
                return client.post("/api/v1/webhooks/erp", content=body, headers=_headers(body))

            # the same announcement delivered three times, plus a second one for the record
            answers = [post(_id_only("evt-1", "5")) for _ in range(3)]
            answers.append(post(_id_only("evt-2", "5")))
            assert [a.status_code for a in answers] == [202] * 4
            assert [a.json()["stored"] for a in answers] == [1, 0, 0, 1]

            deadline = time.monotonic() + 60
            while count(db, "sync_webhook_event", "status = 'pending'"):
                assert time.monotonic() < deadline, "webhook inbox was not processed"
                time.sleep(0.05)
            record = service.find_record(db=db, system="erp", entity="Account", external_id="5")
            assert record["data"]["name"] == "Stavby Brno s.r.o."
            assert record["data"]["ico"] == ico(5)
            assert count(db, "sync_record") == 1 and count(db, "sync_link") == 1
            assert count(db, "sync_record_version") == 1  # two events, one change

            # a user renames the company; the system announces it by id only
            target.state.edit("accounts", "5", name="Stavby Brno a.s.")
            assert post(_id_only("evt-3", "5")).status_code == 202
            while count(db, "sync_webhook_event", "status = 'pending'"):
                assert time.monotonic() < deadline, "webhook inbox was not processed"
                time.sleep(0.05)
            record = service.find_record(db=db, system="erp", entity="Account", external_id="5")
            assert record["data"]["name"] == "Stavby Brno a.s."
            history = service.history(db=db, canonical_id=record["canonical_id"])
            assert [h["data"]["name"] for h in history] == [
                "Stavby Brno s.r.o.",
                "Stavby Brno a.s.",
            ]
            assert count(db, "sync_record") == 1
            assert target.state.writes == 0  # a change from erp is never written back to erp
    finally:
        sync_router.stop_workers()
        reset()


def test_a_late_old_event_does_not_bring_back_an_old_state(
    inbox: SyncEngine, target: TargetServer
) -> None:
    _company(target, "6", "Kováč a syn")
    _deliver(inbox, _id_only("evt-1", "6"))
    _process_until_settled(inbox)
    target.state.edit("accounts", "6", name="Kováč a synové")
    _deliver(inbox, _id_only("evt-3", "6"))
    _process_until_settled(inbox)
    # the first announcement arrives again under another id, long after: the system's
    # current record is fetched, so nothing older comes back
    _deliver(inbox, _id_only("evt-1-resent", "6", version=1))
    _process_until_settled(inbox)
    assert _stored_name(inbox, "6") == "Kováč a synové"
    assert count(inbox.db, "sync_record_version") == 2


def test_a_fetch_failing_for_a_while_is_retried_then_applied(
    inbox: SyncEngine, target: TargetServer
) -> None:
    _company(target, "7", "Horváth stavby")
    target.state.reads_down = 2  # the system answers 503 twice (max_attempts is 3)
    assert _deliver(inbox, _id_only("evt-7", "7")).stored == 1
    webhooks.process_pending(engine=inbox)
    assert _stored_name(inbox, "7") is None
    assert count(inbox.db, "sync_webhook_event", "status = 'pending' AND attempts = 1") == 1
    _process_until_settled(inbox)
    assert _stored_name(inbox, "7") == "Horváth stavby"
    assert target.state.reads["7"] == 3
    assert service.list_dead_letters(db=inbox.db) == []


def test_a_fetch_refused_for_good_goes_to_the_dlq_and_replays(
    inbox: SyncEngine, target: TargetServer
) -> None:
    _company(target, "8", "Dvořák a spol.")
    _company(target, "9", "Černý s.r.o.")
    target.state.gone.add("8")  # 410: retrying will not help
    _deliver(inbox, _id_only("evt-8", "8"))
    _deliver(inbox, _id_only("evt-9", "9"))
    _process_until_settled(inbox)
    assert target.state.reads["8"] == 1  # not retried
    assert _stored_name(inbox, "9") == "Černý s.r.o."  # one refused record blocks nothing
    assert _stored_name(inbox, "8") is None
    [dead] = service.list_dead_letters(db=inbox.db)
    assert dead.external_id == "8" and dead.direction == "inbound"
    assert "id-only webhook" in dead.error and "410" in dead.error
    assert dead.attempts == 1
    # still refused: the replay says so and keeps the item
    assert service.replay_dead_letters(db=inbox.db, engine=inbox) == {
        "replayed": 0,
        "failed_again": 1,
    }
    target.state.gone.clear()  # the record is shared again
    assert service.replay_dead_letters(db=inbox.db, engine=inbox)["replayed"] == 1
    assert _stored_name(inbox, "8") == "Dvořák a spol."
    assert service.list_dead_letters(db=inbox.db) == []
    assert count(inbox.db, "sync_record") == 2


def test_a_fetch_failing_past_the_retry_limit_goes_to_the_dlq(
    inbox: SyncEngine, target: TargetServer
) -> None:
    _company(target, "10", "Procházka elektro")
    target.state.reads_down = 1000  # down for longer than the retries last
    _deliver(inbox, _id_only("evt-10", "10"))
    _process_until_settled(inbox)
    [dead] = service.list_dead_letters(db=inbox.db)
    assert dead.external_id == "10" and dead.attempts == 3 and "503" in dead.error
    assert count(inbox.db, "sync_webhook_event", "status = 'dead'") == 1
    target.state.reads_down = 0  # the system is back
    assert service.replay_dead_letters(db=inbox.db, engine=inbox)["replayed"] == 1
    assert _stored_name(inbox, "10") == "Procházka elektro"
    assert count(inbox.db, "sync_record") == 1


def test_a_record_announced_but_never_readable_is_retried_then_dead_lettered(
    inbox: SyncEngine, target: TargetServer
) -> None:
    # many systems announce a record before it can be read: "not found" is retried first
    _deliver(inbox, _id_only("evt-11", "11"))
    _process_until_settled(inbox)
    assert target.state.reads["11"] == 3
    [dead] = service.list_dead_letters(db=inbox.db)
    assert dead.external_id == "11" and "not found" in dead.error
    assert count(inbox.db, "sync_record") == 0


def test_one_group_commit_stores_a_redelivery_within_the_batch_once(inbox: SyncEngine) -> None:
    """Concurrent deliveries of one event land in the same group commit: one stores it."""
    first, again, other = (
        _id_only("evt-a", "1"),
        _id_only("evt-a", "1"),
        _id_only("evt-b", "2"),
    )
    groups = [
        webhooks.verify(engine=inbox, connection="erp", headers=_headers(body), body=body)
        for body in (first, again, other)
    ]
    with inbox.db.begin() as conn:
        assert webhooks.store_groups(conn, groups) == [1, 0, 1]
    with inbox.db.begin() as conn:
        assert webhooks.store_groups(conn, groups) == [0, 0, 0]
    assert count(inbox.db, "sync_webhook_event") == 2
