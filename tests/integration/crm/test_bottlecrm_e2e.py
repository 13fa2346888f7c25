"""A deal won in BottleCRM reaches Spojka's canonical store through Spojka's own webhook API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from spojka.api.app import API_ROUTERS, create_app
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.bottlecrm.connector import default_mapping
from spojka.core.errors import NotFoundError
from spojka.core.settings import load_settings
from spojka.localsystems.bottlecrm import BottleCRMInstance
from spojka.localsystems.common import free_port, wait_for_http
from spojka.sync import router as sync_router
from spojka.sync import service

pytestmark = pytest.mark.crm


@pytest.fixture
def spojka_api(tmp_path: Path) -> Iterator[tuple[str, Spojka]]:
    """Spojka's API served on a real port, so BottleCRM can deliver webhooks to it."""
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'spojka.sqlite'}"
    )
    instance = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    app = create_app(instance)
    if sync_router.router not in API_ROUTERS:  # until the lead mounts it
        app.include_router(sync_router.router, prefix="/api/v1")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/health", timeout=30)
    try:
        yield url, instance
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sync_router.stop_workers()
        reset()


def _wait_for_stage(instance: Spojka, deal_id: str, stage: str) -> dict[str, Any]:
    """Bounded wait (not a timing assertion): the inbox is processed asynchronously."""
    deadline = time.monotonic() + 60
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = service.find_record(
                db=instance.engine, system="bottlecrm", entity="Opportunity", external_id=deal_id
            )
            if isinstance(last.get("data"), dict) and last["data"].get("stage") == stage:
                return last
        except NotFoundError:
            pass
        time.sleep(0.1)
    pytest.fail(f"deal {deal_id} did not reach stage {stage!r} in the store; last: {last}")


def test_deal_won_flows_from_bottlecrm_into_the_canonical_store(
    crm: BottleCRMInstance, client: BottleCRMClient, spojka_api: tuple[str, Spojka]
) -> None:
    url, instance = spojka_api
    _endpoint, secret = crm.register_webhook(
        f"{url}/api/v1/webhooks/bottlecrm", ["deal.created", "deal.updated", "deal.won"]
    )
    service.save_connection(
        db=instance.engine,
        name="bottlecrm",
        kind="bottlecrm",
        config={"url": crm.url, "token": crm.personal_token, "webhook_secret": secret},
        mapping_yaml=default_mapping(),
    )
    account_id = client.create("accounts", {"name": "Vinařství Mikulov s.r.o."})
    deal_id = client.create(
        "opportunities",
        {
            "name": "Lahvovací linka – Mikulov",
            "account": account_id,
            "currency": "EUR",
            "amount": "88000",
            "stage": "PROPOSAL",
            "closed_on": "2026-12-10",
        },
    )
    created = _wait_for_stage(instance, deal_id, "proposal")
    assert created["data"]["name"] == "Lahvovací linka – Mikulov"

    client.update("opportunities", deal_id, {"stage": "CLOSED_WON"})
    won = _wait_for_stage(instance, deal_id, "won")
    assert won["data"]["amount"] == "88000.00"
