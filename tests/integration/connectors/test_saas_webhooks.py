"""Asana, Jira and Xero webhooks through POST /api/v1/webhooks/{connection} of the real app.

Signatures are computed here with each vendor's documented algorithm (not the connectors'
own helpers): Asana hex HMAC-SHA256 of the raw body keyed with the handshake secret in
``X-Hook-Signature``; Jira ``X-Hub-Signature: sha256=<hex HMAC-SHA256>`` keyed with the
webhook's secret; Xero base64 HMAC-SHA256 keyed with the webhook key in
``x-xero-signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import spojka.connectors as connectors_package
from tests.integration.connectors.conftest import Api
from tests.integration.sync.helpers import count

MAPPINGS = Path(connectors_package.__file__).parent


def _mapping(kind: str) -> str:
    return (MAPPINGS / kind / "mappings" / f"{kind}.yaml").read_text(encoding="utf-8")


def _hmac(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def _connect(api: Api, body: dict[str, Any]) -> None:
    answer = api.client.post("/api/v1/connections", json=body, headers=api.auth("admin"))
    assert answer.status_code == 201, answer.text


def _inbox(api: Api, connection: str) -> int:
    return count(api.instance.engine, "sync_webhook_event", f"connection = '{connection}'")


# -- Asana ------------------------------------------------------------------------------------


def _asana_delivery(gid: str) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {
        "action": "changed",
        "created_at": now,
        "resource": {"gid": gid, "resource_type": "task"},
        "user": {"gid": "1100", "resource_type": "user"},
    }
    return json.dumps({"events": [event]}).encode()


def test_asana_handshake_is_echoed_and_kept_then_deliveries_must_carry_its_signature(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOJKA_TEST_ASANA_TOKEN", "2/1200/1300:abcdef")
    _connect(
        api,
        {
            "name": "ukoly",
            "kind": "asana",
            "credentials": {"token": "env:SPOJKA_TEST_ASANA_TOKEN"},
            "options": {"workspace": "1200000000000000"},
            "mapping": _mapping("asana"),
        },
    )
    url = "/api/v1/webhooks/ukoly"
    body = _asana_delivery("1301")
    secret = secrets.token_hex(32)
    signed = {"X-Hook-Signature": _hmac(secret, body).hex()}
    # Before the handshake nothing can be trusted.
    assert api.client.post(url, content=body, headers=signed).status_code == 401

    # The handshake: Asana's POST with X-Hook-Secret and no body; answered 200 echoing it.
    shake = api.client.post(url, content=b"", headers={"X-Hook-Secret": secret})
    assert shake.status_code == 200, shake.text
    assert shake.headers["X-Hook-Secret"] == secret
    assert _inbox(api, "ukoly") == 0
    listed = api.client.get("/api/v1/connections", headers=api.auth("viewer"))
    assert listed.json()[0]["credentials"]["webhook_secret"] == "db:connection/ukoly/webhook_secret"
    assert secret not in listed.text

    delivered = api.client.post(url, content=body, headers=signed)
    assert delivered.status_code == 202, delivered.text
    assert delivered.json() == {"stored": 1, "duplicates": 0}

    forged = api.client.post(
        url, content=body, headers={"X-Hook-Signature": _hmac("hádám", body).hex()}
    )
    assert forged.status_code == 401
    tampered = body.replace(b"1301", b"1302")
    assert api.client.post(url, content=tampered, headers=signed).status_code == 401
    assert api.client.post(url, content=body).status_code == 401  # unsigned

    # A second handshake would replace the secret: refused, and the kept one still works.
    other = secrets.token_hex(32)
    again = api.client.post(url, content=b"", headers={"X-Hook-Secret": other})
    assert again.status_code == 401
    assert "X-Hook-Secret" not in again.headers
    later = _asana_delivery("1303")
    answer = api.client.post(
        url, content=later, headers={"X-Hook-Signature": _hmac(secret, later).hex()}
    )
    assert answer.status_code == 202 and answer.json()["stored"] == 1
    assert _inbox(api, "ukoly") == 2


# -- Jira -------------------------------------------------------------------------------------


def _jira_delivery() -> bytes:
    return json.dumps(
        {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "id": "10042",
                "key": "IMPL-7",
                "fields": {
                    "summary": "Školení – Žilina",
                    "updated": "2026-11-24T09:00:00.000+0000",
                },
            },
        },
        ensure_ascii=False,
    ).encode()


def test_jira_signed_delivery_is_stored_once_across_retries_and_forgeries_are_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = secrets.token_urlsafe(24)
    monkeypatch.setenv("SPOJKA_TEST_JIRA_TOKEN", "ATATT3x")
    monkeypatch.setenv("SPOJKA_TEST_JIRA_WEBHOOK_SECRET", secret)
    _connect(
        api,
        {
            "name": "jira",
            "kind": "jira",
            "url": "https://firma.atlassian.net",
            "credentials": {
                "api_token": "env:SPOJKA_TEST_JIRA_TOKEN",
                "webhook_secret": "env:SPOJKA_TEST_JIRA_WEBHOOK_SECRET",
            },
            "options": {"email": "integrace@firma.cz"},
            "mapping": _mapping("jira"),
        },
    )
    body = _jira_delivery()
    headers = {
        "X-Hub-Signature": "sha256=" + _hmac(secret, body).hex(),
        "X-Atlassian-Webhook-Identifier": "871d3c8a-1b2f-4a3e-9d41-5c0d2f1e9a77",
        "Content-Type": "application/json",
    }
    first = api.client.post("/api/v1/webhooks/jira", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json() == {"stored": 1, "duplicates": 0}
    retry = api.client.post(
        "/api/v1/webhooks/jira",
        content=body,
        headers={**headers, "X-Atlassian-Webhook-Retry": "1"},
    )
    assert retry.status_code == 202 and retry.json() == {"stored": 0, "duplicates": 1}

    forged = {**headers, "X-Hub-Signature": "sha256=" + _hmac("jiné", body).hex()}
    assert api.client.post("/api/v1/webhooks/jira", content=body, headers=forged).status_code == (
        401
    )
    # A signature header with non-ASCII bytes is a forgery too (401), not a server error.
    odd = {**headers, "X-Hub-Signature": "sha256=é".encode("latin-1")}
    assert api.client.post("/api/v1/webhooks/jira", content=body, headers=odd).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature"}
    assert api.client.post("/api/v1/webhooks/jira", content=body, headers=unsigned).status_code == (
        401
    )
    assert _inbox(api, "jira") == 1


# -- Xero -------------------------------------------------------------------------------------


def _xero_signature(key: str, body: bytes) -> str:
    return base64.b64encode(_hmac(key, body)).decode()


def test_xero_intent_to_receive_and_deliveries_get_200_without_body_forgeries_401(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = base64.b64encode(secrets.token_bytes(48)).decode()
    for name, value in {
        "SPOJKA_TEST_XERO_SECRET": "client-secret",
        "SPOJKA_TEST_XERO_REFRESH": "rt-0",
        "SPOJKA_TEST_XERO_WEBHOOK_KEY": key,
    }.items():
        monkeypatch.setenv(name, value)
    _connect(
        api,
        {
            "name": "ucetnictvi",
            "kind": "xero",
            "credentials": {
                "client_secret": "env:SPOJKA_TEST_XERO_SECRET",
                "refresh_token": "env:SPOJKA_TEST_XERO_REFRESH",
                "webhook_key": "env:SPOJKA_TEST_XERO_WEBHOOK_KEY",
            },
            "options": {"tenant_id": "70784a63-d24b-46a9-a4db-0e70a274b056", "client_id": "C1"},
            "mapping": _mapping("xero"),
        },
    )
    url = "/api/v1/webhooks/ucetnictvi"
    # Intent to receive: a series of signed, event-less requests, some signed wrongly.
    for attempt in range(3):
        check = json.dumps(
            {
                "events": [],
                "lastEventSequence": 0,
                "firstEventSequence": 0,
                "entropy": secrets.token_urlsafe(15) + str(attempt),
            }
        ).encode()
        good = api.client.post(
            url, content=check, headers={"x-xero-signature": _xero_signature(key, check)}
        )
        assert good.status_code == 200, good.text
        assert good.content == b""
        bad = api.client.post(
            url, content=check, headers={"x-xero-signature": _xero_signature("jiný", check)}
        )
        assert bad.status_code == 401
    assert _inbox(api, "ucetnictvi") == 0

    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    delivery = json.dumps(
        {
            "events": [
                {
                    "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/a1b2",
                    "resourceId": "a1b2c3d4-0000-4000-8000-000000000001",
                    "eventDateUtc": now,
                    "eventType": "UPDATE",
                    "eventCategory": "INVOICE",
                    "tenantId": "70784a63-d24b-46a9-a4db-0e70a274b056",
                    "tenantType": "ORGANISATION",
                }
            ],
            "firstEventSequence": 1,
            "lastEventSequence": 1,
            "entropy": "QWERTYUIOP",
        }
    ).encode()
    answer = api.client.post(
        url, content=delivery, headers={"x-xero-signature": _xero_signature(key, delivery)}
    )
    assert answer.status_code == 200 and answer.content == b""
    assert _inbox(api, "ucetnictvi") == 1
