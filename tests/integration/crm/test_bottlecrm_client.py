"""The BottleCRM client and webhook verification against a real local BottleCRM 1.35."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.bottlecrm.webhooks import sign, verify_delivery
from spojka.core.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    TransientError,
    ValidationError,
)
from spojka.localsystems.bottlecrm import BottleCRMInstance
from spojka.localsystems.common import free_port

pytestmark = pytest.mark.crm


def _suffix() -> str:
    return secrets.token_hex(3)


def test_accounts_and_contacts_round_trip_czech_and_slovak_text(
    client: BottleCRMClient,
) -> None:
    name = f"Strojírny Žďár nad Sázavou, a.s. {_suffix()}"
    account_id = client.create(
        "accounts",
        {"name": name, "city": "Žďár nad Sázavou", "description": "Příliš žluťoučký kůň"},
    )
    contact_id = client.create(
        "contacts",
        {
            "first_name": "Ľubomír",
            "last_name": "Ďurčo-Šťastný",
            "email": f"lubomir.{_suffix()}@kosice-stavby.sk",
            "city": "Košice – Staré Mesto",
            "account": account_id,
        },
    )

    account = client.fetch("accounts", account_id)
    assert account["name"] == name
    assert account["city"] == "Žďár nad Sázavou"
    assert account["description"] == "Příliš žluťoučký kůň"
    contact = client.fetch("contacts", contact_id)
    assert (contact["first_name"], contact["last_name"]) == ("Ľubomír", "Ďurčo-Šťastný")
    assert contact["city"] == "Košice – Staré Mesto"

    client.update("accounts", account_id, {"name": name + " – dceřiná", "city": "Jihlava"})
    listed = {a["id"]: a for a in client.iter_all("accounts")}
    assert listed[account_id]["name"] == name + " – dceřiná"
    assert listed[account_id]["city"] == "Jihlava"
    assert contact_id in {c["id"] for c in client.iter_all("contacts")}


def test_listing_pages_through_every_record(client: BottleCRMClient) -> None:
    batch = _suffix()
    created = {
        client.create("contacts", {"first_name": f"Řehoř {i}", "last_name": f"Čermák {batch}"})
        for i in range(23)
    }
    listed = [c["id"] for c in client.iter_all("contacts", page_size=10)]
    assert created <= set(listed)
    assert len(listed) == len(set(listed))


def test_opportunity_moves_to_closed_won_and_the_signed_webhook_verifies(
    crm: BottleCRMInstance, client: BottleCRMClient, receiver: Any
) -> None:
    _endpoint_id, secret = crm.register_webhook(receiver.url, ["deal.won", "deal.updated"])
    account_id = client.create("accounts", {"name": f"Hydraulika Šumperk {_suffix()}"})
    deal_id = client.create(
        "opportunities",
        {
            "name": "Údržba lisovací linky – Šumperk",
            "account": account_id,
            "amount": "125000.50",
            "currency": "EUR",
            "stage": "PROSPECTING",
            "probability": 20,
            "closed_on": "2026-12-31",
        },
    )
    client.update("opportunities", deal_id, {"stage": "CLOSED_WON"})

    delivery = receiver.next_event("deal.won")
    event = verify_delivery(secret, delivery.headers, delivery.body)
    assert event.event == "deal.won"
    assert event.stream == "opportunities"
    assert event.record_id == deal_id
    assert event.data["stage"] == "CLOSED_WON"
    assert event.data["name"] == "Údržba lisovací linky – Šumperk"
    assert event.org_id == crm.org_id
    assert client.fetch("opportunities", deal_id)["stage_kind"] == "won"

    # A forged body, a wrong secret and a replayed old signature are all refused.
    tampered = delivery.body.replace(b"125000", b"925000")
    with pytest.raises(AuthError, match="does not match"):
        verify_delivery(secret, delivery.headers, tampered)
    with pytest.raises(AuthError, match="does not match"):
        verify_delivery("whsec_not-the-secret", delivery.headers, delivery.body)
    stale = {**delivery.headers, "x-bottlecrm-signature": sign(secret, delivery.body, timestamp=1)}
    with pytest.raises(AuthError, match="replay"):
        verify_delivery(secret, stale, delivery.body)
    unsigned = {k: v for k, v in delivery.headers.items() if k != "x-bottlecrm-signature"}
    with pytest.raises(AuthError, match="missing"):
        verify_delivery(secret, unsigned, delivery.body)


def test_notes_and_tasks_land_on_the_record(client: BottleCRMClient) -> None:
    account_id = client.create("accounts", {"name": f"Pekárna Žilina {_suffix()}"})
    deal_id = client.create(
        "opportunities",
        {"name": "Dodávka pecí", "account": account_id, "currency": "EUR", "amount": "9800"},
    )
    note = "Projekt připraven v Redmine: #42 – Dodávka pecí (Žilina)"
    client.add_comment("opportunities", deal_id, note)
    assert note in [c["comment"] for c in client.comments("opportunities", deal_id)]

    title = f"Vystavit fakturu – Pekárna Žilina {_suffix()}"
    task_id = client.create(
        "tasks",
        {"title": title, "status": "New", "priority": "High", "account": account_id},
    )
    task = client.fetch("tasks", task_id)
    assert task["title"] == title
    client.update("tasks", task_id, {"title": title, "status": "Completed"})
    assert client.fetch("tasks", task_id)["status"] == "Completed"
    assert task_id in {t["id"] for t in client.iter_all("tasks")}


def test_a_rejected_record_is_permanent_with_bottlecrms_message(
    client: BottleCRMClient,
) -> None:
    with pytest.raises(ValidationError) as rejected:
        client.create("opportunities", {"name": "Zakázka v korunách", "currency": "CZK"})
    assert rejected.value.detail["field_errors"] == {"currency": ['"CZK" is not a valid choice.']}
    assert "currency" in rejected.value.message

    with pytest.raises(ValidationError, match="name: This field is required"):
        client.create("accounts", {"city": "Brno"})
    with pytest.raises(NotFoundError):
        client.fetch("accounts", "00000000-0000-0000-0000-000000000000")


def test_wrong_token_is_an_auth_error_that_says_so(crm: BottleCRMInstance) -> None:
    wrong = BottleCRMClient(crm.url, "bcrm_pat_" + "x" * 40)
    with wrong, pytest.raises(AuthError, match="403 from BottleCRM: API token rejected"):
        wrong.list_page("accounts")
    # A valid personal token that is not allowed to manage webhooks: forbidden, not "wrong".
    limited = BottleCRMClient(crm.url, crm.personal_token)
    with limited, pytest.raises(ForbiddenError, match="may not POST /api/webhooks/"):
        limited.post("/api/webhooks", {"url": "http://127.0.0.1:9/", "events": []})


def test_system_down_is_transient(crm: BottleCRMInstance) -> None:
    with BottleCRMClient(crm.url, crm.personal_token, read_retries=0) as api:
        api.whoami()
        crm.kill()
        try:
            with pytest.raises(TransientError, match="unreachable"):
                api.whoami()
            with pytest.raises(TransientError, match="unreachable"):
                api.create("accounts", {"name": "Nedoručeno"})
        finally:
            crm.restart()
        assert api.whoami()["user_obj"]["role"] == "ADMIN"


@pytest.fixture
def overloaded_gateway() -> Iterator[str]:
    """A gateway in front of the CRM that is rate limiting (429) or failing (503)."""
    port = free_port()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status = 429 if "accounts" in self.path else 503
            body = json.dumps({"detail": "Request was throttled."}).encode()
            self.send_response(status)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_rate_limit_and_server_errors_carry_retry_after(overloaded_gateway: str) -> None:
    with BottleCRMClient(overloaded_gateway, "bcrm_pat_demo", read_retries=0) as api:
        with pytest.raises(TransientError) as limited:
            api.list_page("accounts")
        assert limited.value.retry_after == 7
        assert "429" in limited.value.message
        with pytest.raises(TransientError) as failing:
            api.create("contacts", {"first_name": "Ján"})
        assert failing.value.retry_after == 7
        assert "503" in failing.value.message


def test_the_token_never_shows_in_the_clients_repr(crm: BottleCRMInstance) -> None:
    with BottleCRMClient(crm.url, crm.personal_token) as api:
        assert crm.personal_token not in repr(api)
