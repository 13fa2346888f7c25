"""POST/GET /api/v1/connections as an administrator and a viewer use them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import spojka.connectors.redmine as redmine_package
from spojka.sync import service as sync_service
from tests.integration.connectors.conftest import Api

MAPPING = (Path(redmine_package.__file__).parent / "mappings" / "redmine.yaml").read_text()


def _redmine(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "pm",
        "kind": "redmine",
        "url": "http://127.0.0.1:9",
        "credentials": {"api_key": "env:SPOJKA_TEST_REDMINE_KEY"},
        "options": {"page_size": 50},
        "rate_limit": {"per_s": 5, "burst": 10},
        "polling_interval_s": 60,
        "owns": [
            {"entity": "Project"},
            {"entity": "Task", "field": "status", "on_violation": "reject"},
        ],
        "mapping": MAPPING,
    }
    body.update(changes)
    return body


def test_admin_creates_and_replaces_a_connection_everyone_reads_references(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOJKA_TEST_REDMINE_KEY", "4f6c1b2e9a")
    created = api.client.post("/api/v1/connections", json=_redmine(), headers=api.auth("admin"))
    assert created.status_code == 201, created.text
    listed = api.client.get("/api/v1/connections", headers=api.auth("viewer"))
    assert listed.status_code == 200
    [pm] = listed.json()
    assert pm["kind"] == "redmine" and pm["url"] == "http://127.0.0.1:9"
    assert pm["credentials"] == {"api_key": "env:SPOJKA_TEST_REDMINE_KEY"}
    assert pm["options"] == {"page_size": 50}
    assert pm["rate_limit"] == {"per_s": 5.0, "burst": 10.0}
    assert pm["polling_interval_s"] == 60.0
    assert {(o["entity"], o["field"], o["on_violation"]) for o in pm["owns"]} == {
        ("Project", "*", "conflict"),
        ("Task", "status", "reject"),
    }
    assert pm["mapping"]
    # never polled: due now; the running runtime polls it (see tests/integration/sync)
    assert pm["polling"]["last_poll_at"] is None and pm["polling"]["next_poll_at"]
    assert pm["polling"]["failures"] == 0

    # Replacing: the new ownership list replaces the old one; 200, not 201.
    replaced = api.client.post(
        "/api/v1/connections",
        json=_redmine(url="http://127.0.0.1:10", owns=[{"entity": "Project"}]),
        headers=api.auth("admin"),
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["url"] == "http://127.0.0.1:10"
    assert [o["entity"] for o in replaced.json()["owns"]] == ["Project"]

    # The sync router's health path answers for it, with the new URL (nothing listens there).
    health = api.client.get("/api/v1/connections/pm/health", headers=api.auth("viewer"))
    assert health.status_code == 200, health.text
    assert health.json()["system"]["ok"] is False
    assert "127.0.0.1:10" in health.json()["system"]["detail"]

    audit = api.client.get(
        "/api/v1/audit", params={"object_type": "connection"}, headers=api.auth("admin")
    ).json()
    assert [a["action"] for a in audit][-2:] in (
        ["connection.create", "connection.update"],
        ["connection.update", "connection.create"],
    )


def test_only_an_administrator_may_save_a_connection(api: Api) -> None:
    assert api.client.post("/api/v1/connections", json=_redmine()).status_code == 401
    for role in ("viewer", "integrator"):
        refused = api.client.post("/api/v1/connections", json=_redmine(), headers=api.auth(role))
        assert refused.status_code == 403
    assert api.client.get("/api/v1/connections").status_code == 401
    assert api.client.get("/api/v1/connections", headers=api.auth("viewer")).json() == []


def test_an_inline_credential_is_refused_naming_the_field_and_never_echoed(api: Api) -> None:
    secret = "Tajný-klíč-Redmine-42"
    answer = api.client.post(
        "/api/v1/connections",
        json=_redmine(credentials={"api_key": secret}),
        headers=api.auth("admin"),
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert [e["field"] for e in problem["errors"]] == ["credentials.api_key"]
    assert "inline secret is refused" in problem["detail"]
    assert secret not in answer.text
    assert api.client.get("/api/v1/connections", headers=api.auth("admin")).json() == []


def test_every_wrong_field_is_named_in_one_problem(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/connections",
        json=_redmine(
            kind="nonexistent",
            url="ftp://pm.example.cz",
            credentials={
                "api_key": "db:nobody-stored-this",
                "webhook_secret": "env:SPOJKA_TEST_NOT_SET",
                "token": "file:/nonexistent/token",
            },
            options={"password": "env:X"},
            mapping="mapping: pm\nversion: 1\nstreams:\n  issues:\n    entity: NoSuchEntity\n",
        ),
        headers=api.auth("admin"),
    )
    assert answer.status_code == 422, answer.text
    fields = [e["field"] for e in answer.json()["errors"]]
    assert fields[:2] == ["kind", "url"]
    assert {
        "credentials.api_key",
        "credentials.webhook_secret",
        "credentials.token",
        "options.password",
        "mapping",
    } <= set(fields)
    assert "variable SPOJKA_TEST_NOT_SET is not set" in answer.json()["detail"]
    assert "unknown connector kind 'nonexistent'" in answer.json()["detail"]
    assert "'nobody-stored-this' is not in the secret store" in answer.json()["detail"]


def test_a_malformed_request_is_a_422_problem(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/connections",
        json={"name": "Špatné jméno", "kind": "redmine", "rate_limit": {"per_s": 0}},
        headers=api.auth("admin"),
    )
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert {"name", "rate_limit.per_s"} <= fields


def test_a_stored_db_reference_is_accepted_and_credentials_saved_by_the_cli_show_as_references(
    api: Api,
) -> None:
    db = api.instance.engine
    # The CLI path (spojka sync connect) moves an inline value into the encrypted store.
    sync_service.save_connection(
        db=db,
        name="erp",
        kind="tryton",
        config={"url": "http://127.0.0.1:9", "database": "firma", "password": "Heslo-123"},
    )
    listed = api.client.get("/api/v1/connections", headers=api.auth("viewer"))
    [erp] = listed.json()
    assert erp["credentials"] == {"password": "db:connection/erp/password"}
    assert "Heslo-123" not in listed.text
    # The same stored secret can be referred to by another connection through the API.
    reuse = api.client.post(
        "/api/v1/connections",
        json={
            "name": "erp-copy",
            "kind": "tryton",
            "url": "http://127.0.0.1:9",
            "credentials": {"password": "db:connection/erp/password"},
            "options": {"database": "firma"},
        },
        headers=api.auth("admin"),
    )
    assert reuse.status_code == 201, reuse.text
    assert reuse.json()["credentials"] == {"password": "db:connection/erp/password"}


def test_a_credential_that_stops_resolving_makes_the_connection_unhealthy_not_the_api(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOJKA_TEST_REDMINE_KEY", "4f6c1b2e9a")
    saved = api.client.post("/api/v1/connections", json=_redmine(), headers=api.auth("admin"))
    assert saved.status_code == 201, saved.text
    monkeypatch.delenv("SPOJKA_TEST_REDMINE_KEY")  # e.g. the service restarted without it
    health = api.client.get("/api/v1/connections/pm/health", headers=api.auth("viewer"))
    assert health.status_code == 200, health.text
    assert health.json()["ok"] is False and health.json()["kind"] == "redmine"
    assert "SPOJKA_TEST_REDMINE_KEY is not set" in health.json()["system"]["detail"]
    unknown = api.client.get("/api/v1/connections/nope/health", headers=api.auth("viewer"))
    assert unknown.status_code == 404
