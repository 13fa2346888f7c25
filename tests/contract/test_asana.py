"""Asana connector against Prism serving Asana's OpenAPI document (asana.com.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from spojka.connectors.asana.connector import AsanaConnector, sign_asana_webhook
from spojka.connectors.registry import connector_class
from spojka.core.errors import AuthError
from spojka.localsystems.prism import PrismServer

from .conftest import ContractTransport, page_through, throttled_once

pytestmark = pytest.mark.contract

SECRET = "asana-tajemství-z-handshake"


def connector(server: PrismServer, transport: ContractTransport, **extra: object) -> AsanaConnector:
    config = {
        "url": server.url,
        "token": "2/1200000000000001/1200000000000002:abcdef",
        "workspace": "1200000000000000",
        "page_size": 10,
        "webhook_secret": SECRET,
        **extra,
    }
    return AsanaConnector(config, transport=transport)


def test_registered_as_entry_point() -> None:
    assert connector_class("asana") is AsanaConnector


def test_reads_page_through_every_stream(
    asana_prism: PrismServer, contract: ContractTransport
) -> None:
    asana = connector(asana_prism, contract, projects=["1201", "1202"])
    for stream in asana.streams():
        records = page_through(asana, stream, since="2026-11-01T08:00:00+01:00")
        assert all(isinstance(r["gid"], str) for r in records)
    contract.assert_clean()
    tasks = [r for r in contract.requests if r.url.path == "/tasks"]
    assert tasks[0].url.params["modified_since"] == "2026-11-01T08:00:00+01:00"
    assert tasks[0].url.params["project"] == "1201"
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in contract.requests)


def test_offset_token_is_passed_on(asana_prism: PrismServer, contract: ContractTransport) -> None:
    asana = connector(asana_prism, contract)
    asana.read_page(
        asana.stream("projects"), since=None, page_token="eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9"
    )
    assert contract.requests[-1].url.params["offset"] == "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9"
    contract.assert_clean()


def test_writes_are_accepted_by_the_contract(
    asana_prism: PrismServer, contract: ContractTransport
) -> None:
    asana = connector(asana_prism, contract)
    asana.write(
        asana.stream("tasks"),
        {"name": "Školení uživatelů – Bratislava", "project_gid": "1201", "due_on": "2026-12-15"},
        external_id=None,
        idempotency_key="t-1",
    )
    asana.write(
        asana.stream("tasks"), {"completed": True}, external_id="1301", idempotency_key="t-2"
    )
    contract.assert_clean()
    sent = json.loads(contract.requests[0].content)
    assert sent["data"]["name"] == "Školení uživatelů – Bratislava"
    assert sent["data"]["projects"] == ["1201"]


def test_without_token_prism_rejects(asana_prism: PrismServer, contract: ContractTransport) -> None:
    bare = httpx.get(asana_prism.url + "/projects", params={"workspace": "1200000000000000"})
    assert bare.status_code == 401
    assert connector(asana_prism, contract).health().ok
    contract.assert_clean()


def test_429_with_retry_after_is_transient(
    asana_prism: PrismServer, contract: ContractTransport
) -> None:
    asana = connector(asana_prism, contract)
    projects = asana.stream("projects")
    throttled_once(
        contract, lambda: asana.read_page(projects, since=None, page_token=None), retry_after="30"
    )


def _delivery(when: datetime) -> bytes:
    return json.dumps(
        {
            "events": [
                {
                    "action": "changed",
                    "created_at": when.isoformat().replace("+00:00", "Z"),
                    "resource": {"gid": "1301", "resource_type": "task"},
                    "user": {"gid": "1100", "resource_type": "user"},
                }
            ]
        }
    ).encode()


def test_webhook_handshake_valid_forged_and_stale() -> None:
    fresh = AsanaConnector({"token": "t", "workspace": "w"})
    reply = fresh.webhook_handshake({"X-Hook-Secret": SECRET}, b"")
    assert reply is not None and reply.headers == {"X-Hook-Secret": SECRET}
    assert reply.remember == {"webhook_secret": SECRET}
    assert fresh.webhook_handshake({"X-Hook-Signature": "ab"}, b"{}") is None  # a delivery
    asana = AsanaConnector({"token": "t", "workspace": "w", "webhook_secret": SECRET})
    with pytest.raises(AuthError, match="new handshake is refused"):
        asana.webhook_handshake({"X-Hook-Secret": "jiné-tajemství"}, b"")
    body = _delivery(datetime.now(UTC))
    events = asana.verify_webhook({"X-Hook-Signature": sign_asana_webhook(SECRET, body)}, body)
    assert [(e.stream, e.external_id) for e in events] == [("tasks", "1301")]
    with pytest.raises(AuthError, match="does not match"):
        asana.verify_webhook({"X-Hook-Signature": sign_asana_webhook("cizí", body)}, body)
    stale = _delivery(datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(AuthError, match="window"):
        asana.verify_webhook({"X-Hook-Signature": sign_asana_webhook(SECRET, stale)}, stale)


def test_default_mapping_turns_asana_records_into_canonical_entities() -> None:
    import spojka.connectors.asana as package
    from spojka.sync.mapping import load_mapping

    mapping = load_mapping(Path(package.__file__).parent / "mappings" / "asana.yaml")
    asana = AsanaConnector({"token": "t", "workspace": "w"})
    samples = {
        "projects": asana._project({"gid": "1201", "name": "Zavedení CRM – Tatra a.s."}),
        "tasks": asana._task(
            {
                "gid": "1301",
                "name": "Migrace kontaktů",
                "completed": True,
                "due_on": "2026-12-15",
                "memberships": [{"project": {"gid": "1201"}, "section": {"gid": "1401"}}],
            },
            "1201",
        ),
        "sections": asana._section({"gid": "1401", "name": "Fáze 1 – příprava"}, "1201"),
    }
    canonical = {n: mapping.streams[n].to_canonical(r) for n, r in samples.items()}
    assert canonical["tasks"]["status"] == "done"
    assert canonical["tasks"]["milestone_id"] == "1401"
    assert canonical["sections"]["name"] == "Fáze 1 – příprava"
