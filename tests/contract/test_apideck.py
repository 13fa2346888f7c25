"""Apideck CRM connector against Prism serving Apideck's OpenAPI document (crm.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from spojka.connectors.apideck.connector import ApideckConnector, sign_apideck_webhook
from spojka.connectors.registry import connector_class
from spojka.core.errors import AuthError
from spojka.localsystems.prism import PrismServer

from .conftest import ContractTransport, page_through, throttled_once

pytestmark = pytest.mark.contract

API_KEY = "sk_live_spojka-test"


def connector(server: PrismServer, transport: ContractTransport) -> ApideckConnector:
    return ApideckConnector(
        {
            "url": server.url,
            "api_key": API_KEY,
            "app_id": "dSBdXd2H6Mqwfg0atXHXYcysLJE9qyn1VwBtXHX",
            "consumer_id": "firma-novak-sro",
            "service_id": "pipedrive",
            "page_size": 50,
        },
        transport=transport,
    )


def test_registered_as_entry_point() -> None:
    assert connector_class("apideck") is ApideckConnector


def test_reads_page_through_every_stream(
    apideck_prism: PrismServer, contract: ContractTransport
) -> None:
    apideck = connector(apideck_prism, contract)
    for stream in apideck.streams():
        records = page_through(apideck, stream, since="2026-11-01T07:00:00Z")
        assert all(isinstance(r["id"], str) for r in records)
    contract.assert_clean()
    for request in contract.requests:
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.headers["x-apideck-consumer-id"] == "firma-novak-sro"
        assert request.headers["x-apideck-app-id"]
    activities = [r for r in contract.requests if r.url.path == "/crm/activities"]
    assert activities[0].url.params["filter[updated_since]"] == "2026-11-01T07:00:00Z"


def test_cursor_is_passed_on(apideck_prism: PrismServer, contract: ContractTransport) -> None:
    apideck = connector(apideck_prism, contract)
    apideck.read_page(
        apideck.stream("companies"), since=None, page_token="em9oby1jcm06OnBhZ2U6OjI="
    )
    assert contract.requests[-1].url.params["cursor"] == "em9oby1jcm06OnBhZ2U6OjI="
    contract.assert_clean()


def test_writes_are_accepted_by_the_contract(
    apideck_prism: PrismServer, contract: ContractTransport
) -> None:
    apideck = connector(apideck_prism, contract)
    apideck.write(
        apideck.stream("companies"),
        {"name": "Novák & syn, s.r.o.", "vat_number": "CZ27082440", "email": "info@novak.cz"},
        external_id=None,
        idempotency_key="a-1",
    )
    apideck.write(
        apideck.stream("opportunities"),
        {"title": "ERP pro Košice", "primary_contact_id": "12345", "monetary_amount": 480000},
        external_id=None,
        idempotency_key="a-2",
    )
    apideck.write(
        apideck.stream("opportunities"),
        {"title": "ERP pro Košice", "primary_contact_id": "12345", "status": "won"},
        external_id="12346",
        idempotency_key="a-3",
    )
    contract.assert_clean()
    sent = json.loads(contract.requests[0].content)
    assert sent["emails"] == [{"email": "info@novak.cz"}]
    assert [r.method for r in contract.requests] == ["POST", "POST", "PATCH"]


def test_without_api_key_prism_rejects(apideck_prism: PrismServer) -> None:
    bare = httpx.get(
        apideck_prism.url + "/crm/companies",
        headers={"x-apideck-app-id": "a", "x-apideck-consumer-id": "c"},
    )
    assert bare.status_code == 401


def test_429_with_retry_after_is_transient(
    apideck_prism: PrismServer, contract: ContractTransport
) -> None:
    apideck = connector(apideck_prism, contract)
    contacts = apideck.stream("contacts")
    throttled_once(
        contract, lambda: apideck.read_page(contacts, since=None, page_token=None), retry_after="12"
    )


def _delivery(when: datetime) -> bytes:
    return json.dumps(
        {
            "payload": {
                "event_type": "crm.opportunity.updated",
                "unified_api": "crm",
                "service_id": "pipedrive",
                "consumer_id": "firma-novak-sro",
                "entity_id": "12346",
                "entity_type": "opportunity",
                "event_id": "9755c355-56c3-4a2f-a2da-86ff4411fccb",
                "occurred_at": when.isoformat(),
            }
        }
    ).encode()


def test_webhook_valid_forged_and_stale() -> None:
    apideck = ApideckConnector({"api_key": API_KEY, "app_id": "a", "consumer_id": "c"})
    body = _delivery(datetime.now(UTC))
    signature = sign_apideck_webhook(API_KEY, body)
    events = apideck.verify_webhook({"x-apideck-signature": signature}, body)
    assert [(e.stream, e.external_id) for e in events] == [("opportunities", "12346")]
    with pytest.raises(AuthError, match="does not match"):
        apideck.verify_webhook({"x-apideck-signature": sign_apideck_webhook("cizí", body)}, body)
    stale = _delivery(datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(AuthError, match="window"):
        apideck.verify_webhook({"x-apideck-signature": sign_apideck_webhook(API_KEY, stale)}, stale)


def test_default_mapping_turns_apideck_records_into_canonical_entities() -> None:
    import spojka.connectors.apideck as package
    from spojka.sync.mapping import load_mapping

    mapping = load_mapping(Path(package.__file__).parent / "mappings" / "apideck.yaml")
    shape = ApideckConnector._shape
    samples = {
        "companies": shape(
            {"id": "1", "name": "Novák & syn, s.r.o.", "emails": [{"email": "info@novak.cz"}]}
        ),
        "contacts": shape(
            {"id": "2", "first_name": "Jana", "last_name": "Nováková", "company_id": "1"}
        ),
        "opportunities": shape(
            {
                "id": "3",
                "title": "ERP pro Košice",
                "company_id": "1",
                "status": "won",
                "monetary_amount": 480000,
                "currency": "EUR",
                "win_probability": 100,
                "close_date": "2026-12-01",
            }
        ),
        "activities": shape(
            {
                "id": "4",
                "type": "meeting",
                "title": "Schůzka – Žilina",
                "activity_datetime": "2026-11-24T10:00:00Z",
                "company_id": "1",
            }
        ),
    }
    canonical = {n: mapping.streams[n].to_canonical(r) for n, r in samples.items()}
    assert canonical["opportunities"]["stage"] == "won"
    assert canonical["contacts"]["last_name"] == "Nováková"
    assert canonical["activities"]["kind"] == "meeting"
