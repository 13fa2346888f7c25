"""The quality API: review queue, decisions by role, golden records with lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from spojka.api.app import create_app
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.governance import tokens
from spojka.governance.models import Role
from spojka.quality import service
from spojka.quality.router import router


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    instance: Spojka = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    plain: dict[str, str] = {}
    with transaction(instance.sessions) as db:
        for role in (Role.viewer, Role.approver):
            _, plain[role.value] = tokens.create(db, name=f"q-{role.value}", role=role)
        base = {"name": "Stavby Novák s.r.o.", "city": "Brno", "zip": "602 00"}
        service.ingest(
            db_session=db, entity="account", system="crm", external_id="C-1", values=base
        )
        service.ingest(
            db_session=db,
            entity="account",
            system="erp",
            external_id="E-1",
            values={**base, "name": "Stavby Nováček s.r.o."},
        )
    app = create_app(instance)
    if not any(getattr(r, "path", "").startswith("/api/v1/quality") for r in app.routes):
        app.include_router(router, prefix="/api/v1")  # until the lead mounts it
    with TestClient(app) as client:
        yield client, plain
    reset()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_review_pair_shows_agreeing_fields_and_an_approver_accepts(api) -> None:  # type: ignore[no-untyped-def]
    client, plain = api
    assert client.get("/api/v1/quality/reviews").status_code == 401
    reviews = client.get("/api/v1/quality/reviews", headers=_auth(plain["viewer"])).json()
    assert len(reviews) == 1
    pair = reviews[0]
    assert {"zip", "city"} <= set(pair["agreeing"])
    assert pair["left"]["external_id"] == "C-1" and pair["right"]["external_id"] == "E-1"

    url = f"/api/v1/quality/reviews/{pair['id']}/decision"
    refused = client.post(url, json={"decision": "accept"}, headers=_auth(plain["viewer"]))
    assert refused.status_code == 403
    done = client.post(
        url, json={"decision": "accept", "reason": "same firm"}, headers=_auth(plain["approver"])
    )
    assert done.status_code == 200, done.text
    cluster_id = pair["left"]["cluster_id"]
    golden = client.get(
        f"/api/v1/quality/clusters/{cluster_id}", headers=_auth(plain["viewer"])
    ).json()
    assert len(golden["members"]) == 2
    assert golden["lineage"]["name"]["system"] == "crm"

    undo = client.post(
        f"/api/v1/quality/events/{done.json()['event_id']}/undo",
        json={},
        headers=_auth(plain["approver"]),
    )
    assert undo.status_code == 200, undo.text
    again = client.post(
        f"/api/v1/quality/events/{done.json()['event_id']}/undo",
        json={},
        headers=_auth(plain["approver"]),
    )
    assert again.status_code == 409
    report = client.get("/api/v1/quality/report", headers=_auth(plain["viewer"])).json()
    assert {g["system"] for g in report["groups"]} == {"crm", "erp"}
