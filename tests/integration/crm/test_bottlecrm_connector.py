"""BottleCRMConnector through Spojka's sync engine, against a real BottleCRM."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from spojka.connectors import registry
from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.bottlecrm.connector import BottleCRMConnector, default_mapping
from spojka.core.db import make_engine, upgrade
from spojka.core.errors import AuthError, ValidationError
from spojka.localsystems.bottlecrm import BottleCRMInstance
from spojka.sync import service
from spojka.sync import webhooks as inbox
from spojka.sync.engine import SyncEngine

pytestmark = pytest.mark.crm

CONNECTION = "bottlecrm"


def _config(crm: BottleCRMInstance, secret: str = "") -> dict[str, Any]:
    return {"url": crm.url, "token": crm.personal_token, "webhook_secret": secret}


@pytest.fixture
def sync(crm: BottleCRMInstance, sqlite_url: str) -> Iterator[SyncEngine]:
    upgrade(sqlite_url)
    db = make_engine(sqlite_url)
    service.save_connection(
        db=db,
        name=CONNECTION,
        kind="bottlecrm",
        config=_config(crm),
        mapping_yaml=default_mapping(),
    )
    engine = SyncEngine(db)
    try:
        yield engine
    finally:
        engine.close()
        db.dispose()


def _canonical(engine: SyncEngine, entity: str, external_id: str) -> dict[str, Any]:
    return service.find_record(
        db=engine.db, system=CONNECTION, entity=entity, external_id=external_id
    )


def test_the_connector_is_an_installed_plugin(crm: BottleCRMInstance) -> None:
    connector = registry.create("bottlecrm", _config(crm))
    assert isinstance(connector, BottleCRMConnector)
    assert {s.name for s in connector.streams()} >= {
        "accounts",
        "contacts",
        "leads",
        "opportunities",
        "activities",
        "tasks",
        "tickets",
    }
    assert "token accepted" in connector.health().detail
    connector.close()


def test_full_listing_fills_the_canonical_store_and_a_second_run_changes_nothing(
    client: BottleCRMClient, sync: SyncEngine
) -> None:
    tag = secrets.token_hex(3)
    account_id = client.create(
        "accounts",
        {
            "name": f"Kovárna Třinec {tag}",
            "city": "Třinec",
            "website": "https://www.kovarna.cz/kontakt",
            "custom_fields": {"ico": "25596641", "dic": "CZ25596641"},
        },
    )
    contact_id = client.create(
        "contacts",
        {"first_name": "Žofie", "last_name": f"Dvořáková {tag}", "account": account_id},
    )
    deal_id = client.create(
        "opportunities",
        {
            "name": f"Výměna lisu – Třinec {tag}",
            "account": account_id,
            "amount": "48000",
            "currency": "EUR",
            "stage": "NEGOTIATION",
            "closed_on": "2026-12-15",
        },
    )

    first = sync.poll(CONNECTION)
    assert sum(r.stats.dead_lettered for r in first) == 0

    account = _canonical(sync, "Account", account_id)["data"]
    assert account["name"] == f"Kovárna Třinec {tag}"
    assert account["address"]["city"] == "Třinec"
    assert account["domain"] == "kovarna.cz"
    assert (account["ico"], account["dic"]) == ("25596641", "CZ25596641")
    contact = _canonical(sync, "Contact", contact_id)["data"]
    assert (contact["first_name"], contact["account_id"]) == ("Žofie", account_id)
    deal = _canonical(sync, "Opportunity", deal_id)["data"]
    assert deal["stage"] == "negotiation"
    assert deal["amount"] == "48000.00"
    assert deal["expected_close"] == "2026-12-15"

    again = sync.poll(CONNECTION)
    assert sum(r.stats.applied + r.stats.created for r in again) == 0
    assert _canonical(sync, "Opportunity", deal_id)["version"] == 1


def test_deal_won_webhook_reaches_the_canonical_store(
    crm: BottleCRMInstance, client: BottleCRMClient, sync: SyncEngine, receiver: Any
) -> None:
    _endpoint, secret = crm.register_webhook(receiver.url, ["deal.won"])
    service.save_connection(
        db=sync.db,
        name=CONNECTION,
        kind="bottlecrm",
        config=_config(crm, secret),
        mapping_yaml=default_mapping(),
    )
    sync.reload()
    account_id = client.create("accounts", {"name": f"Mlékárna Kroměříž {secrets.token_hex(3)}"})
    deal_id = client.create(
        "opportunities",
        {
            "name": "Chladicí box",
            "account": account_id,
            "currency": "EUR",
            "amount": "7300",
            "closed_on": "2026-11-30",
        },
    )
    sync.poll(CONNECTION, streams=["opportunities"])
    assert _canonical(sync, "Opportunity", deal_id)["data"]["stage"] == "lead"

    client.update("opportunities", deal_id, {"stage": "CLOSED_WON"})
    delivery = receiver.next_event("deal.won")
    receipt = inbox.receive(
        engine=sync, connection=CONNECTION, headers=delivery.headers, body=delivery.body
    )
    assert receipt.stored == 1
    # BottleCRM retrying the same delivery is stored once.
    again = inbox.receive(
        engine=sync, connection=CONNECTION, headers=delivery.headers, body=delivery.body
    )
    assert again.duplicates == 1
    inbox.process_pending(engine=sync)
    won = _canonical(sync, "Opportunity", deal_id)
    assert won["data"]["stage"] == "won"
    assert won["version"] == 2

    forged = delivery.body.replace(b"CLOSED_WON", b"CLOSED_LOST")
    with pytest.raises(AuthError):
        inbox.receive(engine=sync, connection=CONNECTION, headers=delivery.headers, body=forged)


def test_writes_are_idempotent_per_key(crm: BottleCRMInstance, client: BottleCRMClient) -> None:
    connector = BottleCRMConnector(_config(crm))
    tag = secrets.token_hex(3)
    accounts = connector.stream("accounts")
    record = {
        "name": f"Lesy Brezno, š.p. {tag}",
        "ico": "36038351",
        "dic": "SK2020087982",
        "address": {"city": "Brezno", "zip": "97701"},
    }
    first = connector.write(accounts, record, external_id=None, idempotency_key=f"acc-{tag}")
    retried = connector.write(accounts, record, external_id=None, idempotency_key=f"acc-{tag}")
    assert first.created and not retried.created
    assert retried.external_id == first.external_id
    assert len(client.find("accounts", {"search": f"Lesy Brezno, š.p. {tag}"})) == 1
    stored = connector.fetch("accounts", first.external_id)
    assert (stored["city"], stored["postcode"]) == ("Brezno", "97701")
    assert (stored["ico"], stored["dic"]) == ("36038351", "SK2020087982")
    assert stored["description"] == ""  # the marker is BottleCRM's business, not the user's

    deals = connector.stream("opportunities")
    deal = {
        "name": f"Štiepka – Brezno {tag}",
        "account_id": first.external_id,
        "stage": "PROPOSAL",
        "amount": "15200.40",
        "currency": "EUR",
        "closed_on": "2026-12-20",
    }
    made = connector.write(deals, deal, external_id=None, idempotency_key=f"deal-{tag}")
    connector.write(
        deals,
        {**deal, "stage": "CLOSED_WON"},
        external_id=made.external_id,
        idempotency_key=f"deal-{tag}-won",
    )
    assert connector.fetch("opportunities", made.external_id)["won"] is True

    notes = connector.stream("notes")
    note = {
        "kind": "note",
        "subject": "Faktura vystavena",
        "body": "Faktúra 2026-0042 v Trytone, splatnosť 14 dní.",
        "opportunity_id": made.external_id,
    }
    noted = connector.write(notes, note, external_id=None, idempotency_key=f"note-{tag}")
    renoted = connector.write(notes, note, external_id=None, idempotency_key=f"note-{tag}")
    assert noted.created and not renoted.created
    comments = client.comments("opportunities", made.external_id)
    assert len(comments) == 1
    assert comments[0]["comment"].startswith("Faktura vystavena\nFaktúra 2026-0042")

    task = {"kind": "task", "subject": f"Projekt připraven {tag}", "account_id": first.external_id}
    made_task = connector.write(notes, task, external_id=None, idempotency_key=f"task-{tag}")
    again_task = connector.write(notes, task, external_id=None, idempotency_key=f"task-{tag}")
    assert again_task.external_id == made_task.external_id
    assert connector.fetch("tasks", made_task.external_id)["title"] == f"Projekt připraven {tag}"
    connector.close()


def test_a_rejected_write_goes_to_the_dlq_with_bottlecrms_message(
    crm: BottleCRMInstance, sync: SyncEngine
) -> None:
    connector = BottleCRMConnector(_config(crm))
    with pytest.raises(ValidationError, match='currency: "CZK" is not a valid choice'):
        connector.write(
            connector.stream("opportunities"),
            {"name": "Zakázka v Kč", "currency": "CZK", "amount": "100000"},
            external_id=None,
            idempotency_key="czk-1",
        )
    connector.close()


def test_reconciliation_finds_a_record_deleted_in_bottlecrm(
    client: BottleCRMClient, sync: SyncEngine
) -> None:
    doomed = client.create("contacts", {"first_name": "Ondřej", "last_name": "Zrušený"})
    sync.poll(CONNECTION, streams=["contacts"])
    client.remove("contacts", doomed)
    report = service.reconcile(db=sync.db, engine=sync, connection=CONNECTION, apply=True)
    contacts = next(r for r in report if r["stream"] == "contacts")
    assert doomed in contacts["deleted_ids"]
    assert _canonical(sync, "Contact", doomed)["deleted"] is True


def test_records_deleted_while_paging_do_not_hide_others(
    crm: BottleCRMInstance, client: BottleCRMClient
) -> None:
    tag = secrets.token_hex(3)
    for i in range(24):
        client.create("accounts", {"name": f"Družstvo Horní Dolní {tag} {i:02d}"})
    connector = BottleCRMConnector({**_config(crm), "page_size": 10})
    accounts = connector.stream("accounts")
    before = set(connector.list_ids(accounts))

    first = connector.read_page(accounts, since=None, page_token=None)
    # Someone deletes three records the first page already showed, and adds two.
    gone = [r["id"] for r in first.records[:3]]
    for account_id in gone:
        client.remove("accounts", account_id)
    client.create("accounts", {"name": f"Nová firma {tag} A"})
    client.create("accounts", {"name": f"Nová firma {tag} B"})
    seen = {r["id"] for r in first.records}
    token = first.next_token
    while token is not None:
        page = connector.read_page(accounts, since=None, page_token=token)
        seen.update(r["id"] for r in page.records)
        token = page.next_token
    assert before - set(gone) <= seen  # nothing that still exists was skipped
    connector.close()


def test_every_readable_stream_lists_through_the_connector(
    crm: BottleCRMInstance, client: BottleCRMClient
) -> None:
    tag = secrets.token_hex(3)
    account_id = client.create("accounts", {"name": f"Tlačiareň Prešov {tag}"})
    made = {
        "leads": client.create(
            "leads",
            {"title": f"Dopyt – Prešov {tag}", "first_name": "Ľudmila", "last_name": "Ščerbová"},
        ),
        "tickets": client.create(
            "tickets",
            {
                "name": f"Reklamácia tlače {tag}",
                "status": "New",
                "priority": "Normal",
                "account": account_id,
            },
        ),
        "tasks": client.create(
            "tasks",
            {"title": f"Zavolať zákazníkovi {tag}", "status": "New", "priority": "Low"},
        ),
    }
    connector = BottleCRMConnector(_config(crm))
    for stream_name, record_id in made.items():
        ids = set(connector.list_ids(connector.stream(stream_name)))
        assert record_id in ids, stream_name
    lead = connector.fetch("leads", made["leads"])
    assert (lead["first_name"], lead["last_name"]) == ("Ľudmila", "Ščerbová")
    activity = connector.read_page(connector.stream("activities"), since=None, page_token=None)
    assert made["tickets"] in {r["entity_id"] for r in activity.records}
    connector.close()
