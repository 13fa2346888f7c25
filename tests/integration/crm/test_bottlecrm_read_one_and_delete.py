"""BottleCRMConnector's read by id and delete, against a real BottleCRM: ``read_one`` gives
exactly the record a listing gives, ``delete`` removes accounts, contacts and tasks once (a
repeat is a success) and refuses an account whose deals BottleCRM would delete with it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.bottlecrm.connector import BottleCRMConnector
from spojka.core.errors import AuthError, PermanentError, TransientError
from spojka.localsystems.bottlecrm import BottleCRMInstance
from spojka.localsystems.common import free_port
from tests.support import read_all

pytestmark = pytest.mark.crm

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def connector(crm: BottleCRMInstance) -> Iterator[BottleCRMConnector]:
    conn = BottleCRMConnector({"url": crm.url, "token": crm.personal_token})
    try:
        yield conn
    finally:
        conn.close()


def test_read_one_gives_the_record_a_listing_gives_for_every_stream(
    connector: BottleCRMConnector, client: BottleCRMClient
) -> None:
    tag = secrets.token_hex(3)
    account = client.create(
        "accounts",
        {
            "name": f"Sklárny Karolinka {tag}",
            "city": "Karolinka",
            "website": "https://www.sklarny.cz/",
            "custom_fields": {"ico": "25596641"},
        },
    )
    client.create("contacts", {"first_name": "Božena", "last_name": f"Sklenářová {tag}"})
    client.create("opportunities", {"name": f"Pece {tag}", "account": account, "amount": "5000"})
    client.create("tasks", {"title": f"Zavolat {tag}", "status": "New", "priority": "High"})
    client.create("leads", {"title": f"Poptávka {tag}", "first_name": "Jan", "last_name": "Kos"})
    client.create(
        "tickets",
        {"name": f"Reklamace {tag}", "account": account, "status": "New", "priority": "High"},
    )
    compared = []
    for stream in connector.streams():
        listed = read_all(connector, stream)
        for record in listed:
            assert connector.read_one(stream, str(record["id"])) == record, stream.name
        if listed:
            compared.append(stream.name)
    assert compared == [
        "accounts",
        "contacts",
        "leads",
        "opportunities",
        "activities",
        "tasks",
        "tickets",
    ]
    for name in ("accounts", "contacts", "opportunities", "tasks"):
        assert connector.read_one(connector.stream(name), MISSING) is None
    assert connector.read_one(connector.stream("accounts"), "../contacts") is None
    assert connector.read_one(connector.stream("notes"), account) is None  # write-only


def test_a_deleted_record_is_gone_and_a_second_delete_changes_nothing(
    connector: BottleCRMConnector, client: BottleCRMClient
) -> None:
    tag = secrets.token_hex(3)
    ids = {
        "accounts": client.create("accounts", {"name": f"Zaniklá firma {tag}"}),
        "contacts": client.create("contacts", {"first_name": "Ida", "last_name": f"Odešlá {tag}"}),
        "tasks": client.create(
            "tasks", {"title": f"Zrušeno {tag}", "status": "New", "priority": "Low"}
        ),
    }
    for name, record_id in ids.items():
        stream = connector.stream(name)
        first = connector.delete(stream, record_id, idempotency_key=f"del-{tag}")
        assert not first.already_gone, name
        assert connector.read_one(stream, record_id) is None, name
        assert record_id not in set(connector.list_ids(stream)), name
        again = connector.delete(stream, record_id, idempotency_key=f"del-{tag}")
        assert again.already_gone and again.external_id == record_id, name


def test_an_account_with_deals_is_not_deleted_and_the_reason_is_given(
    connector: BottleCRMConnector, client: BottleCRMClient
) -> None:
    tag = secrets.token_hex(3)
    account = client.create("accounts", {"name": f"Odběratel s obchodem {tag}"})
    deal = client.create("opportunities", {"name": f"Obchod {tag}", "account": account})
    accounts = connector.stream("accounts")
    with pytest.raises(PermanentError, match=r"still has 1 deal\(s\) and 0 ticket\(s\)"):
        connector.delete(accounts, account, idempotency_key="refused")
    assert connector.read_one(accounts, account) is not None
    assert connector.read_one(connector.stream("opportunities"), deal) is not None

    with pytest.raises(PermanentError, match="does not support deletes"):
        connector.delete(connector.stream("opportunities"), deal, idempotency_key="refused")
    assert [s.name for s in connector.streams() if s.supports_deletes] == [
        "accounts",
        "contacts",
        "tasks",
    ]


def test_a_system_down_is_transient_and_a_bad_token_is_an_auth_error(
    crm: BottleCRMInstance,
) -> None:
    down = BottleCRMConnector({"url": f"http://127.0.0.1:{free_port()}", "token": "bcrm_pat_x"})
    with pytest.raises(TransientError):
        down.read_one(down.stream("accounts"), MISSING)
    with pytest.raises(TransientError):
        down.delete(down.stream("contacts"), MISSING, idempotency_key="k")
    bad = BottleCRMConnector({"url": crm.url, "token": "bcrm_pat_" + "0" * 40})
    with pytest.raises(AuthError, match="token"):
        bad.read_one(bad.stream("accounts"), MISSING)
    with pytest.raises(AuthError, match="token"):
        bad.delete(bad.stream("contacts"), MISSING, idempotency_key="k")
