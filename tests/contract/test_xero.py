"""Xero Accounting connector against Prism serving Xero's OpenAPI document.

The OAuth token endpoint (identity.xero.com) is not part of the accounting document; a small
local token server with Xero's rotation rule (each refresh token works once) stands in for it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from spojka.connectors.registry import connector_class
from spojka.connectors.xero.connector import XeroConnector, sign_xero_webhook, xero_date
from spojka.core.errors import AuthError
from spojka.localsystems.prism import PrismServer

from .conftest import ContractTransport, throttled_once

pytestmark = pytest.mark.contract

WEBHOOK_KEY = "xero-klíč-webhooku"


class TokenServer:
    """Issues access tokens for refresh tokens; every refresh token is single-use."""

    def __init__(self) -> None:
        self.valid = {"rt-0"}
        self.used: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                token = form.get("refresh_token", [""])[0]
                ok = (
                    form.get("grant_type") == ["refresh_token"]
                    and self.headers.get("Authorization", "").startswith("Basic ")
                    and token in outer.valid
                )
                if not ok:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b'{"error":"invalid_grant"}')
                    return
                outer.valid.discard(token)
                outer.used.append(token)
                new = f"rt-{len(outer.used)}"
                outer.valid.add(new)
                body = json.dumps(
                    {"access_token": uuid.uuid4().hex, "refresh_token": new, "expires_in": 1800}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/connect/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.stop()


def connector(
    server: PrismServer, transport: ContractTransport, tokens: TokenServer, tmp_path: Path
) -> XeroConnector:
    transport.unwrap_string_examples = True
    return XeroConnector(
        {
            "url": server.url,
            "tenant_id": "a3f1c2d4-0000-4000-8000-000000000001",
            "client_id": "spojka-app",
            "client_secret": "tajemství",
            "refresh_token": "rt-0",
            "token_url": tokens.url,
            "token_file": str(tmp_path / "xero-tokens.json"),
            "webhook_key": WEBHOOK_KEY,
        },
        transport=transport,
    )


def test_registered_as_entry_point() -> None:
    assert connector_class("xero") is XeroConnector


def test_reads_every_stream_with_bearer_and_tenant(
    xero_prism: PrismServer, contract: ContractTransport, token_server: TokenServer, tmp_path: Path
) -> None:
    xero = connector(xero_prism, contract, token_server, tmp_path)
    for stream in xero.streams():
        page = xero.read_page(stream, since="2026-11-01T08:00:00+01:00", page_token=None)
        assert all(isinstance(r[stream.primary_key], str) for r in page.records)
        assert page.next_token in (None, "2")
        xero.read_page(stream, since=None, page_token="2")
    contract.assert_clean()
    first = contract.requests[0]
    assert first.headers["If-Modified-Since"] == "2026-11-01T07:00:00Z"
    assert first.headers["xero-tenant-id"] == "a3f1c2d4-0000-4000-8000-000000000001"
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in contract.requests)
    assert token_server.used == ["rt-0"]  # one refresh, the access token reused after


def test_refresh_token_rotation_is_stored(
    xero_prism: PrismServer, contract: ContractTransport, token_server: TokenServer, tmp_path: Path
) -> None:
    xero = connector(xero_prism, contract, token_server, tmp_path)
    assert xero.health().ok
    stored = json.loads((tmp_path / "xero-tokens.json").read_text())
    assert stored["refresh_token"] == "rt-1"
    xero.tokens.access_token(force=True)  # the next refresh uses the rotated token
    assert token_server.used == ["rt-0", "rt-1"]
    # A second Spojka process starting from the file keeps working after rotation.
    again = connector(xero_prism, contract, token_server, tmp_path)
    again.tokens.access_token(force=True)
    assert token_server.used[-1] == "rt-2"
    # The stale token from the config is dead: a clear AuthError, not a retry loop.
    (tmp_path / "xero-tokens.json").unlink()
    stale = connector(xero_prism, contract, token_server, tmp_path)
    with pytest.raises(AuthError, match="refresh token rejected"):
        stale.tokens.access_token()
    contract.assert_clean()


def test_writes_are_accepted_by_the_contract(
    xero_prism: PrismServer, contract: ContractTransport, token_server: TokenServer, tmp_path: Path
) -> None:
    xero = connector(xero_prism, contract, token_server, tmp_path)
    xero.write(
        xero.stream("contacts"),
        {
            "Name": "Šťastný a syn s.r.o.",
            "TaxNumber": "CZ12345678",
            "EmailAddress": "ucto@stastny.cz",
        },
        external_id=None,
        idempotency_key="c-1",
    )
    xero.write(
        xero.stream("invoices"),
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": "00000000-0000-4000-8000-000000000002"},
            "Date": "2026-11-24",
            "DueDate": "2026-12-08",
            "LineItems": [
                {"Description": "Implementace – 1. etapa", "Quantity": 1, "UnitAmount": 125000}
            ],
            "Reference": "2026001234",
        },
        external_id=None,
        idempotency_key="i-1",
    )
    xero.write(
        xero.stream("contacts"),
        {"Name": "Šťastný a syn, s.r.o."},
        external_id="00000000-0000-4000-8000-000000000002",
        idempotency_key="c-2",
    )
    contract.assert_clean()
    sent = [r for r in contract.requests if r.method in ("PUT", "POST")]
    assert [r.method for r in sent] == ["PUT", "PUT", "POST"]
    assert sent[0].headers["Idempotency-Key"] == "c-1"
    assert json.loads(sent[0].content)["Contacts"][0]["Name"] == "Šťastný a syn s.r.o."


def test_without_bearer_prism_rejects(xero_prism: PrismServer) -> None:
    bare = httpx.get(xero_prism.url + "/Contacts", headers={"xero-tenant-id": "a3f1c2d4"})
    assert bare.status_code == 401


def test_429_with_retry_after_is_transient(
    xero_prism: PrismServer, contract: ContractTransport, token_server: TokenServer, tmp_path: Path
) -> None:
    xero = connector(xero_prism, contract, token_server, tmp_path)
    invoices = xero.stream("invoices")
    throttled_once(
        contract, lambda: xero.read_page(invoices, since=None, page_token=None), retry_after="60"
    )


def _delivery(when: float) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000", time.gmtime(when))
    return json.dumps(
        {
            "events": [
                {
                    "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/abc",
                    "resourceId": "abc",
                    "eventDateUtc": stamp,
                    "eventType": "UPDATE",
                    "eventCategory": "INVOICE",
                    "tenantId": "a3f1c2d4",
                    "tenantType": "ORGANISATION",
                }
            ],
            "firstEventSequence": 1,
            "lastEventSequence": 1,
            "entropy": "XYZ",
        }
    ).encode()


def test_webhook_valid_forged_and_stale(token_server: TokenServer, tmp_path: Path) -> None:
    xero = XeroConnector(
        {"tenant_id": "t", "client_id": "c", "client_secret": "s", "webhook_key": WEBHOOK_KEY}
    )
    body = _delivery(time.time())
    events = xero.verify_webhook({"x-xero-signature": sign_xero_webhook(WEBHOOK_KEY, body)}, body)
    assert [(e.stream, e.external_id) for e in events] == [("invoices", "abc")]
    with pytest.raises(AuthError, match="does not match"):
        xero.verify_webhook({"x-xero-signature": sign_xero_webhook("cizí", body)}, body)
    stale = _delivery(time.time() - 3 * 86400)
    with pytest.raises(AuthError, match="window"):
        xero.verify_webhook({"x-xero-signature": sign_xero_webhook(WEBHOOK_KEY, stale)}, stale)
    # Xero's "intent to receive" check: an empty, correctly signed delivery is fine.
    empty = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"A"}'
    assert (
        xero.verify_webhook({"x-xero-signature": sign_xero_webhook(WEBHOOK_KEY, empty)}, empty)
        == []
    )


def test_xero_dates_become_iso() -> None:
    assert xero_date("/Date(1573755038314+0000)/") == "2019-11-14T18:10:38.314000+00:00"


def test_default_mapping_turns_xero_records_into_canonical_entities() -> None:
    import spojka.connectors.xero as package
    from spojka.sync.mapping import load_mapping

    mapping = load_mapping(Path(package.__file__).parent / "mappings" / "xero.yaml")
    xero = XeroConnector({"tenant_id": "t", "client_id": "c", "client_secret": "s"})
    contact = {"ContactID": "c-1", "Name": "Šťastný a syn s.r.o.", "TaxNumber": "CZ12345678"}
    invoice = {
        "InvoiceID": "i-1",
        "InvoiceNumber": "FV-2026-0042",
        "Type": "ACCREC",
        "Contact": {"ContactID": "c-1", "Name": "Šťastný a syn s.r.o."},
        "Date": "/Date(1763942400000+0000)/",
        "DueDate": "/Date(1765152000000+0000)/",
        "CurrencyCode": "EUR",
        "Status": "AUTHORISED",
        "Total": 151250.0,
        "UpdatedDateUTC": "/Date(1763980000000+0000)/",
    }
    payment = {
        "PaymentID": "p-1",
        "Amount": 151250.0,
        "Date": "/Date(1764547200000+0000)/",
        "Invoice": {"InvoiceID": "i-1"},
    }
    order = {
        "PurchaseOrderID": "o-1",
        "PurchaseOrderNumber": "PO-0007",
        "Contact": {"ContactID": "c-1"},
        "Date": "/Date(1763942400000+0000)/",
        "Status": "AUTHORISED",
        "CurrencyCode": "CZK",
    }
    shaped = {
        "contacts": xero._shape("contacts", contact),
        "invoices": xero._shape("invoices", invoice),
        "payments": xero._shape("payments", payment),
        "purchase_orders": xero._shape("purchase_orders", order),
    }
    canonical = {n: mapping.streams[n].to_canonical(r) for n, r in shaped.items()}
    assert canonical["contacts"]["name"] == "Šťastný a syn s.r.o."
    assert canonical["invoices"]["state"] == "posted"
    assert canonical["invoices"]["issued"] == "2025-11-24"
    assert canonical["payments"]["invoice_id"] == "i-1"
    assert canonical["purchase_orders"]["state"] == "confirmed"
