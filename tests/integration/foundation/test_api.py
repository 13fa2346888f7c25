"""The API: every route guarded by role, problem+json errors, traces, limits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from spojka.api.app import create_app
from spojka.api.auth import PUBLIC_PATHS, SIGNATURE_AUTH_PREFIXES
from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.governance import audit, tokens
from spojka.governance.models import Role


@pytest.fixture
def api(spojka_app: Spojka) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    plain: dict[Role, str] = {}
    with transaction(spojka_app.sessions) as session:
        for role in Role:
            _, plain[role] = tokens.create(session, name=f"t-{role.value}", role=role)
    with TestClient(create_app(spojka_app)) as client:
        yield client, plain


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_needs_a_token_and_a_strong_enough_role(api):
    """Walks the whole route table as published: a new unprotected route fails here."""
    client, plain = api
    checked = 0
    for path, operations in client.app.openapi()["paths"].items():
        if path in PUBLIC_PATHS or path.startswith(SIGNATURE_AUTH_PREFIXES):
            continue
        for method, operation in operations.items():
            requirement = operation.get("security")
            assert requirement, f"{method.upper()} {path} has no role guard: it is unprotected"
            allowed = {Role(r) for r in requirement[0]["SpojkaToken"]}
            url = _concrete(path)
            anonymous = client.request(method, url, json={})
            assert anonymous.status_code == 401, (method, url, anonymous.text)
            assert anonymous.headers["content-type"] == "application/problem+json"
            for role in set(Role) - allowed:
                denied = client.request(method, url, json={}, headers=_bearer(plain[role]))
                assert denied.status_code == 403, (method, url, role, denied.text)
            checked += 1
    assert checked >= 10
    # Routes hidden from the document would escape the walk above: only public ones may hide.
    hidden = [
        r.path
        for r in client.app.routes
        if isinstance(r, APIRoute) and not r.include_in_schema and r.path not in PUBLIC_PATHS
    ]
    assert hidden == []


def test_public_endpoints_answer_without_a_token(api):
    client, _ = api
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    assert "spojka_http_requests_total" in client.get("/metrics").text
    assert "/api/v1/status" in client.get("/openapi.json").json()["paths"]
    assert "Spojka" in client.get("/").text


def test_status_says_who_is_asking(api):
    client, plain = api
    body = client.get("/api/v1/status", headers=_bearer(plain[Role.viewer])).json()
    assert body["you"] == {"name": "t-viewer", "role": "viewer"}


def test_invalid_and_revoked_tokens_are_refused(api, spojka_app: Spojka):
    client, plain = api
    forged = plain[Role.admin][:-4] + "AAAA"
    bad = client.get("/api/v1/status", headers=_bearer(forged))
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid API token"
    assert client.get("/api/v1/status", headers=_bearer("not-a-token")).status_code == 401
    created = client.post(
        "/api/v1/tokens",
        json={"name": "temp", "role": "viewer"},
        headers=_bearer(plain[Role.admin]),
    ).json()
    assert client.get("/api/v1/status", headers=_bearer(created["token"])).status_code == 200
    client.delete(f"/api/v1/tokens/{created['id']}", headers=_bearer(plain[Role.admin]))
    revoked = client.get("/api/v1/status", headers=_bearer(created["token"]))
    assert revoked.status_code == 401
    with transaction(spojka_app.sessions) as session:
        stored = [t.token_hash for t in tokens.list_tokens(session)]
    assert created["token"].rsplit("_", 1)[1] not in " ".join(stored)


def test_malformed_json_is_a_clear_400(api):
    client, plain = api
    response = client.post(
        "/api/v1/tokens",
        content=b'{"name": "x", "role":',
        headers={**_bearer(plain[Role.admin]), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Malformed JSON"


def test_wrong_types_and_missing_fields_name_the_field(api):
    client, plain = api
    response = client.post(
        "/api/v1/tokens",
        json={"name": ["x"], "role": "superuser"},
        headers=_bearer(plain[Role.admin]),
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"name", "role"}
    missing = client.post("/api/v1/tokens", json={}, headers=_bearer(plain[Role.admin]))
    assert {e["field"] for e in missing.json()["errors"]} == {"name", "role"}


def test_oversized_body_is_refused_before_it_is_read(api):
    client, plain = api
    big = b'{"name": "' + b"x" * 2_000_000 + b'", "role": "viewer"}'
    response = client.post(
        "/api/v1/tokens",
        content=big,
        headers={**_bearer(plain[Role.admin]), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "SPOJKA_MAX_BODY_BYTES" in response.json()["detail"]


def test_duplicate_token_name_is_a_conflict_and_nothing_is_written(api, spojka_app: Spojka):
    client, plain = api
    with transaction(spojka_app.sessions) as session:
        before = len(audit.list_entries(session, limit=1000))
    response = client.post(
        "/api/v1/tokens",
        json={"name": "t-viewer", "role": "viewer"},
        headers=_bearer(plain[Role.admin]),
    )
    assert response.status_code == 409
    with transaction(spojka_app.sessions) as session:
        assert len(audit.list_entries(session, limit=1000)) == before


def test_trace_id_flows_from_traceparent_into_the_audit_entry(api, spojka_app: Spojka):
    client, plain = api
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.post(
        "/api/v1/tokens",
        json={"name": "traced", "role": "viewer"},
        headers={**_bearer(plain[Role.admin]), "traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 201
    assert response.headers["x-trace-id"] == trace
    entries = client.get(
        "/api/v1/audit", params={"object_type": "api_token"}, headers=_bearer(plain[Role.auditor])
    ).json()
    assert entries[0]["trace_id"] == trace and entries[0]["actor"] == "t-admin"


def test_starting_an_unknown_flow_or_with_wrong_arguments_is_refused(api):
    client, plain = api
    unknown = client.post(
        "/api/v1/flows/nope/runs", json={}, headers=_bearer(plain[Role.integrator])
    )
    assert unknown.status_code == 404
    wrong = client.post(
        "/api/v1/flows/spojka.probe/runs",
        json={"colour": "red"},
        headers=_bearer(plain[Role.integrator]),
    )
    assert wrong.status_code == 400 and "colour" in wrong.json()["detail"]


def test_document_uploads_have_their_own_larger_limit(api):
    client, plain = api
    # 2 MB is over the JSON limit but within the upload limit: the route itself answers.
    response = client.post(
        "/api/v1/documents/extract",
        params={"filename": "big.pdf"},
        content=b"%PDF" * 500_000,
        headers=_bearer(plain[Role.integrator]),
    )
    assert response.status_code != 413
