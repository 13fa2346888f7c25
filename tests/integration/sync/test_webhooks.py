"""POST /api/v1/webhooks/{connection} through the real app: verified, stored before the
answer, de-duplicated, processed asynchronously; newest version wins by version."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spojka.api.app import API_ROUTERS, create_app
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.connectors.base import sign_payload
from spojka.core.settings import load_settings
from spojka.sync import router as sync_router
from spojka.sync import service
from tests.integration.sync.helpers import connect_erp, count, ico
from tests.integration.sync.target import TargetServer

SECRET = "whsec-erp"


@pytest.fixture
def client(db_url: str, tmp_path: Path, target: TargetServer) -> Iterator[TestClient]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    instance: Spojka = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    connect_erp(instance.engine, target.url, secret=SECRET)
    app = create_app(instance)
    if sync_router.router not in API_ROUTERS:  # until the lead mounts it
        app.include_router(sync_router.router, prefix="/api/v1")
    with TestClient(app) as test_client:
        yield test_client
    sync_router.stop_workers()
    reset()


def _event(event_id: str, version: int, name: str, record_id: str = "77") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "stream": "accounts",
        "id": record_id,
        "version": version,
        "record": {"name": name, "ico": ico(77), "email": "info@stavby.cz"},
    }


def _post(
    client: TestClient,
    body: Any,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    connection: str = "erp",
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "X-Spojka-Signature": sign_payload(secret, raw, timestamp=ts),
        "Content-Type": "application/json",
    }
    return client.post(f"/api/v1/webhooks/{connection}", content=raw, headers=headers)


def _drained(client: TestClient) -> None:
    """Wait until the background worker has processed the inbox (asynchronous by design)."""
    db = client.app.state.spojka.engine  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while count(db, "sync_webhook_event", "status = 'pending'"):
        assert time.monotonic() < deadline, "webhook inbox was not processed"
        time.sleep(0.05)


def test_same_webhook_five_times_and_out_of_order_is_applied_once_newest_wins(
    client: TestClient,
) -> None:
    db = client.app.state.spojka.engine  # type: ignore[attr-defined]
    answers = [_post(client, _event("evt-1", 5, "Stavby Brno v5")) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 5
    assert [a.json()["stored"] for a in answers] == [1, 0, 0, 0, 0]
    assert count(db, "sync_webhook_event") == 1  # stored once, durably, before the answers
    # newer and older versions arrive out of order
    assert _post(client, _event("evt-3", 9, "Stavby Brno v9")).status_code == 202
    assert _post(client, _event("evt-2", 7, "Stavby Brno v7")).status_code == 202
    assert _post(client, _event("evt-0", 3, "Stavby Brno v3")).status_code == 202
    _drained(client)
    record = service.find_record(db=db, system="erp", entity="Account", external_id="77")
    assert record["data"]["name"] == "Stavby Brno v9"
    history = service.history(db=db, canonical_id=record["canonical_id"])
    assert [h["data"]["name"] for h in history][-1] == "Stavby Brno v9"
    assert "Stavby Brno v3" not in [h["data"]["name"] for h in history]
    assert count(db, "sync_record") == 1 and count(db, "sync_link") == 1


def test_forged_stale_malformed_and_unknown_are_refused_and_nothing_is_stored(
    client: TestClient,
) -> None:
    db = client.app.state.spojka.engine  # type: ignore[attr-defined]
    forged = _post(client, _event("evt-x", 1, "Podvod"), secret="guessed")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    stale = _post(client, _event("evt-y", 1, "Stará"), ts=int(time.time()) - 3600)
    assert stale.status_code == 401
    assert _post(client, b'{"event_id": "evt-z", "stream": ').status_code == 400
    assert _post(client, {"stream": "accounts"}).status_code == 400
    assert _post(client, _event("evt-w", 1, "Kdo"), connection="nikdo").status_code == 404
    unsigned = client.post("/api/v1/webhooks/erp", json=_event("evt-v", 1, "Bez podpisu"))
    assert unsigned.status_code == 401
    assert count(db, "sync_webhook_event") == 0


def test_webhook_echo_of_our_own_write_changes_nothing(
    client: TestClient, target: TargetServer
) -> None:
    db = client.app.state.spojka.engine  # type: ignore[attr-defined]
    assert _post(client, _event("evt-1", 5, "Stavby Brno")).status_code == 202
    _drained(client)
    versions = count(db, "sync_record_version")
    # the same content announced again with a new event id (e.g. the system re-sends)
    assert _post(client, _event("evt-2", 6, "Stavby Brno")).status_code == 202
    _drained(client)
    assert count(db, "sync_record_version") == versions
    assert target.state.writes == 0  # a change from erp is never written back to erp


def test_every_other_sync_route_needs_a_token(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    checked = 0
    for path, operations in paths.items():
        if not path.startswith(("/api/v1/conflicts", "/api/v1/dlq", "/api/v1/connections")):
            continue
        for method, operation in operations.items():
            assert operation.get("security"), f"{method} {path} has no role guard"
            url = path.replace("{conflict_id}", "1").replace("{item_id}", "1")
            url = url.replace("{connection}", "erp")
            assert client.request(method, url, json={}).status_code == 401, (method, url)
            checked += 1
    assert checked == 12  # conflicts, dlq, health, and connections (GET, POST, DELETE)


def test_health_dlq_and_conflicts_over_the_api(client: TestClient) -> None:
    from spojka.core.db import transaction
    from spojka.governance import tokens
    from spojka.governance.models import Role

    instance = client.app.state.spojka  # type: ignore[attr-defined]
    with transaction(instance.sessions) as session:
        _, viewer = tokens.create(session, name="viewer", role=Role.viewer)
        _, admin = tokens.create(session, name="admin", role=Role.admin)
    assert _post(client, _event("evt-1", 5, "Stavby Brno")).status_code == 202
    _drained(client)
    health = client.get(
        "/api/v1/connections/erp/health", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert health.status_code == 200
    body = health.json()
    assert body["connection"] == "erp" and body["dlq_depth"] == 0
    assert body["webhooks_pending"] == 0 and body["system"]["ok"]
    as_admin = {"Authorization": f"Bearer {admin}"}
    assert client.get("/api/v1/dlq", headers=as_admin).json() == []
    assert client.get("/api/v1/conflicts", headers=as_admin).json() == []
    missing = client.post(
        "/api/v1/conflicts/99/resolve", json={"pick": "current"}, headers=as_admin
    )
    assert missing.status_code == 404
    assert (
        client.post(
            "/api/v1/dlq/replay", json={}, headers={"Authorization": f"Bearer {viewer}"}
        ).status_code
        == 403
    )
    assert client.post("/api/v1/dlq/replay", json={}, headers=as_admin).json() == {
        "replayed": 0,
        "failed_again": 0,
    }


def test_an_edit_within_the_same_version_stamp_is_not_dropped(client: TestClient) -> None:
    """Redmine and others stamp versions to the second: two edits may share one."""
    db = client.app.state.spojka.engine  # type: ignore[attr-defined]
    assert _post(client, _event("evt-1", 5, "Stavby Brno")).status_code == 202
    _drained(client)
    assert _post(client, _event("evt-2", 5, "Stavby Brno a.s.")).status_code == 202
    _drained(client)
    record = service.find_record(db=db, system="erp", entity="Account", external_id="77")
    assert record["data"]["name"] == "Stavby Brno a.s."
