"""Jira Cloud connector against Prism serving Atlassian's OpenAPI document (jira.json)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from spojka.connectors.base import Connector
from spojka.connectors.jira.connector import JiraConnector, sign_jira_webhook
from spojka.connectors.registry import create
from spojka.core.errors import AuthError, TransientError
from spojka.localsystems.prism import PrismServer

from .conftest import ContractTransport, page_through, throttled_once

pytestmark = pytest.mark.contract

SECRET = "tajné-heslo-webhooku"


def connector(server: PrismServer, transport: ContractTransport, **extra: object) -> JiraConnector:
    config = {
        "url": server.url,
        "email": "jana.novakova@firma.cz",
        "api_token": "ATATT-token",
        "page_size": 5,
        "webhook_secret": SECRET,
        **extra,
    }
    return JiraConnector(config, transport=transport)


def test_registered_as_entry_point() -> None:
    made: Connector = create("jira", {"url": "http://x", "email": "a@b.cz", "api_token": "t"})
    assert isinstance(made, JiraConnector)
    assert {s.entity for s in made.streams()} == {"Project", "Task", "Milestone", "Timesheet"}


def test_reads_page_through_every_stream(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    jira = connector(jira_prism, contract, projects=["IMPL"])
    for name in ("projects", "issues", "versions", "worklogs"):
        records = page_through(jira, jira.stream(name), since="2026-11-01T08:00:00+01:00")
        assert all(isinstance(r["id"], str) for r in records)
    contract.assert_clean()
    sent = [r for r in contract.requests if r.url.path == "/rest/api/3/search"]
    assert 'updated >= "2026-11-01 07:00"' in sent[0].url.params["jql"]
    assert all(r.headers["Authorization"].startswith("Basic ") for r in contract.requests)


def test_offset_paging_follows_start_at(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    jira = connector(jira_prism, contract)
    page = jira.read_page(jira.stream("projects"), since=None, page_token="10")
    sent = contract.requests[-1].url.params
    assert sent["startAt"] == "10"
    if page.next_token is not None:
        assert int(page.next_token) == 10 + len(page.records)
    contract.assert_clean()


def test_writes_are_accepted_by_the_contract(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    jira = connector(jira_prism, contract)
    created = jira.write(
        jira.stream("issues"),
        {
            "summary": "Nasazení ERP – školení účetních",
            "project_id": "10000",
            "duedate": "2026-12-15",
        },
        external_id=None,
        idempotency_key="k1",
    )
    assert created.created
    jira.write(
        jira.stream("issues"),
        {"summary": "Nasazení ERP – školení účetních (přesunuto)"},
        external_id="10042",
        idempotency_key="k2",
    )
    jira.write(
        jira.stream("versions"),
        {"name": "Milník 2 – spuštění", "project_id": "10000", "releaseDate": "2026-12-31"},
        external_id=None,
        idempotency_key="k3",
    )
    jira.write(
        jira.stream("worklogs"),
        {"issue_id": "10042", "hours": 1.5, "comment": "Konzultace s účtárnou, Žilina"},
        external_id=None,
        idempotency_key="k4",
    )
    contract.assert_clean()
    body = json.loads(contract.requests[0].content)
    assert body["fields"]["summary"] == "Nasazení ERP – školení účetních"


def test_without_credentials_prism_rejects_and_connector_says_auth(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    # /myself requires basicAuth or OAuth2 in the document (no anonymous alternative).
    bare = httpx.get(jira_prism.url + "/rest/api/3/myself")
    assert bare.status_code == 401
    jira = connector(jira_prism, contract)
    assert jira.health().ok
    contract.assert_clean()

    jira.client._auth_headers = dict  # a connection whose credentials went missing
    with pytest.raises(AuthError, match="401 from Jira"):
        jira.client.request("GET", "/rest/api/3/myself")


def test_429_with_retry_after_is_transient(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    jira = connector(jira_prism, contract)
    issues = jira.stream("issues")
    page = throttled_once(contract, lambda: jira.read_page(issues, since=None, page_token=None))
    assert isinstance(page.records, list)


def _delivery(stamp_ms: int) -> bytes:
    return json.dumps(
        {
            "timestamp": stamp_ms,
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "id": "10042",
                "key": "IMPL-7",
                "fields": {"summary": "Řešení – Košice", "updated": "2026-11-24T09:00:00.000+0000"},
            },
        }
    ).encode()


def test_webhook_valid_forged_and_stale() -> None:
    jira = JiraConnector(
        {"url": "http://x", "email": "a@b.cz", "api_token": "t", "webhook_secret": SECRET}
    )
    body = _delivery(int(time.time() * 1000))
    events = jira.verify_webhook({"X-Hub-Signature": sign_jira_webhook(SECRET, body)}, body)
    assert [(e.stream, e.external_id) for e in events] == [("issues", "10042")]
    assert events[0].record is not None and events[0].record["summary"] == "Řešení – Košice"

    with pytest.raises(AuthError, match="does not match"):
        jira.verify_webhook({"X-Hub-Signature": sign_jira_webhook("jiné", body)}, body)
    with pytest.raises(AuthError, match="missing"):
        jira.verify_webhook({}, body)
    stale = _delivery(int((time.time() - 3600) * 1000))
    with pytest.raises(AuthError, match="window"):
        jira.verify_webhook({"X-Hub-Signature": sign_jira_webhook(SECRET, stale)}, stale)


def test_the_guard_catches_a_request_that_breaks_the_contract(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    with httpx.Client(base_url=jira_prism.url, transport=contract) as raw:
        raw.get("/rest/api/3/project/search", params={"startAt": "první"})
    with pytest.raises(AssertionError, match="startat must be integer"):
        contract.assert_clean()


def test_default_mapping_turns_jira_records_into_canonical_entities() -> None:
    from pathlib import Path

    import spojka.connectors.jira as package
    from spojka.sync.mapping import load_mapping

    mapping = load_mapping(Path(package.__file__).parent / "mappings" / "jira.yaml")
    jira = JiraConnector({"url": "http://x", "email": "a@b.cz", "api_token": "t"})
    samples = {
        "projects": jira._project(
            {"id": "10000", "key": "IMPL", "name": "Implementace – Šťastný s.r.o."}
        ),
        "issues": jira._issue(
            {
                "id": "10042",
                "key": "IMPL-7",
                "fields": {
                    "summary": "Školení účetních v Žilině",
                    "status": {"name": "In Progress"},
                    "project": {"id": "10000"},
                    "fixVersions": [{"id": "10100"}],
                    "duedate": "2026-12-15",
                    "timeoriginalestimate": 5400,
                    "updated": "2026-11-24T09:00:00.000+0000",
                },
            }
        ),
        "versions": jira._version(
            {"id": "10100", "name": "Spuštění", "projectId": 10000, "releaseDate": "2026-12-31"},
            "IMPL",
        ),
        "worklogs": {
            **jira._worklog(
                {
                    "id": "200",
                    "issueId": "10042",
                    "author": {"accountId": "5b10a2844c20165700ede21g"},
                    "started": "2026-11-24T09:00:00.000+0000",
                    "timeSpentSeconds": 5400,
                }
            ),
            "project_id": "10000",
        },
    }
    canonical = {name: mapping.streams[name].to_canonical(r) for name, r in samples.items()}
    assert canonical["issues"]["status"] == "in_progress"
    assert canonical["issues"]["subject"] == "Školení účetních v Žilině"
    assert canonical["versions"]["status"] == "open"
    assert canonical["worklogs"]["hours"] in ("1.5", 1.5, "1.50")


def test_429_the_document_declares_is_transient(
    jira_prism: PrismServer, contract: ContractTransport
) -> None:
    # Atlassian's document declares 429 on its user searches; Prism returns it on request.
    jira = connector(jira_prism, contract)
    contract.prefer = "code=429"
    with pytest.raises(TransientError, match="429 from Jira"):
        jira.client.request("GET", "/rest/api/3/user/search", params={"query": "novak"})
    assert contract.requests[-1].headers["Prefer"] == "code=429"
