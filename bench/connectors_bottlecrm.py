"""BottleCRM connector benchmark: Spojka's path against a minimal direct client, same run.

Measures, against a real local BottleCRM 1.35 (installed and migrated on first use):

* write throughput: creating accounts through ``BottleCRMConnector.write`` (idempotency
  marker lookup + create) and through ``BottleCRMClient.create`` (plain create, error
  mapping) versus a bare ``httpx`` POST of the same payloads;
* read throughput: a full listing of accounts through ``BottleCRMConnector.read_page``
  (paging + normalisation) versus bare ``httpx`` paging of the same endpoint;
* deal won → webhook: the time from the PATCH that moves a deal to CLOSED_WON until the
  signed ``deal.won`` delivery reaches a receiver, and until the won stage is in Spojka's
  canonical store (verify → inbox → ingest, called in-process), with the bare PATCH (no
  webhook registered) as the baseline;
* deal won → canonical store through Spojka's real webhook API (uvicorn, signature check,
  durable inbox, background worker), the path production takes.

Usage: ``.venv/bin/python bench/connectors_bottlecrm.py``
(options: ``--records 120 --read-rounds 2 --deals 15``).
Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.connectors.bottlecrm.connector import BottleCRMConnector, default_mapping
from spojka.core.db import make_engine, upgrade
from spojka.localsystems import bottlecrm
from spojka.localsystems.common import free_port
from spojka.sync import service
from spojka.sync import webhooks as inbox
from spojka.sync.engine import SyncEngine


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def _timed(fn: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


class Receiver:
    """Records each POST with its arrival time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/bottlecrm"
        self.deliveries: queue.Queue[tuple[float, dict[str, str], bytes]] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.deliveries.put((arrived, headers, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_event(self, event: str) -> tuple[float, dict[str, str], bytes]:
        while True:
            arrived, headers, body = self.deliveries.get(timeout=60)
            if headers.get("x-bottlecrm-event") == event:
                return arrived, headers, body

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def bench_writes(crm: bottlecrm.BottleCRMInstance, records: int) -> dict[str, Any]:
    tag = secrets.token_hex(3)
    payload: Callable[[str, int], dict[str, Any]] = lambda who, i: {  # noqa: E731
        "name": f"Stavební firma Šťastný {who} {tag} {i}",
        "city": "Žďár nad Sázavou",
        "description": "Zákazník z veletrhu",
    }
    headers = {"Authorization": f"Bearer {crm.personal_token}"}
    raw = httpx.Client(base_url=crm.url, headers=headers, timeout=30)
    client = BottleCRMClient(crm.url, crm.personal_token)
    connector = BottleCRMConnector({"url": crm.url, "token": crm.personal_token})
    accounts = connector.stream("accounts")
    # Interleaved rounds so a slowly warming server does not favour one side.
    times = {"direct": 0.0, "client": 0.0, "connector": 0.0}
    per_round = 10
    for start in range(0, records, per_round):
        batch = range(start, min(records, start + per_round))

        def direct(batch: range = batch) -> int:
            for i in batch:
                response = raw.post("/api/accounts/", json=payload("direct", i))
                response.raise_for_status()
            return len(batch)

        def via_client(batch: range = batch) -> int:
            for i in batch:
                client.create("accounts", payload("client", i))
            return len(batch)

        def via_connector(batch: range = batch) -> int:
            for i in batch:
                connector.write(
                    accounts,
                    payload("connector", i),
                    external_id=None,
                    idempotency_key=f"bench-{tag}-{i}",
                )
            return len(batch)

        for name, fn in (("direct", direct), ("client", via_client), ("connector", via_connector)):
            _, seconds = _timed(fn)
            times[name] += seconds
    raw.close()
    client.close()
    connector.close()
    result = {f"write_{k}_per_s": _rate(records, v) for k, v in times.items()}
    result["write_client_overhead_ratio"] = round(times["client"] / times["direct"], 3)
    result["write_connector_overhead_ratio"] = round(times["connector"] / times["direct"], 3)
    return result


def bench_reads(crm: bottlecrm.BottleCRMInstance, rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {crm.personal_token}"}
    raw = httpx.Client(base_url=crm.url, headers=headers, timeout=60)
    connector = BottleCRMConnector({"url": crm.url, "token": crm.personal_token})
    stream = connector.stream("accounts")
    page = 100

    def direct() -> int:
        count = 0
        for active in ("true", "false"):
            offset = 0
            while True:
                body = raw.get(
                    "/api/accounts/", params={"limit": page, "offset": offset, "is_active": active}
                ).json()
                key = ("active_accounts", "open_accounts")
                if active == "false":
                    key = ("closed_accounts", "close_accounts")
                rows = body[key[0]][key[1]]
                count += len(rows)
                if len(rows) < page:
                    break
                offset += len(rows)
        return count

    def via_connector() -> int:
        # Pages overlap by a few rows (see BottleCRMConnector.read_page): count each once.
        seen: set[str] = set()
        token = None
        while True:
            result = connector.read_page(stream, since=None, page_token=token)
            seen.update(str(r["id"]) for r in result.records)
            if result.next_token is None:
                return len(seen)
            token = result.next_token

    times = {"direct": 0.0, "connector": 0.0}
    counted = {"direct": 0, "connector": 0}
    # A warm-up listing each, then alternate who goes first: the server caches warm up.
    direct()
    via_connector()
    for round_no in range(rounds):
        order = [("direct", direct), ("connector", via_connector)]
        for name, fn in order if round_no % 2 == 0 else reversed(order):
            count, seconds = _timed(fn)
            times[name] += seconds
            counted[name] += count
    raw.close()
    connector.close()
    assert counted["direct"] == counted["connector"], counted
    return {
        "read_records": counted["direct"] // rounds,
        "read_direct_per_s": _rate(counted["direct"], times["direct"]),
        "read_connector_per_s": _rate(counted["connector"], times["connector"]),
        "read_connector_overhead_ratio": round(times["connector"] / times["direct"], 3),
    }


def bench_deal_won(crm: bottlecrm.BottleCRMInstance, deals: int, workdir: Path) -> dict[str, Any]:
    client = BottleCRMClient(crm.url, crm.personal_token)
    account = client.create("accounts", {"name": f"Pivovar Černá Hora {secrets.token_hex(3)}"})

    def new_deal(i: int) -> str:
        return client.create(
            "opportunities",
            {
                "name": f"Stáčecí linka {i}",
                "account": account,
                "currency": "EUR",
                "amount": "52000",
                "stage": "NEGOTIATION",
                "closed_on": "2026-12-31",
            },
        )

    # Baseline: the same PATCH while no webhook is registered.
    baseline = []
    for i in range(deals):
        deal = new_deal(i)
        started = time.perf_counter()
        client.update("opportunities", deal, {"stage": "CLOSED_WON"})
        baseline.append((time.perf_counter() - started) * 1000)

    receiver = Receiver()
    _endpoint, secret = crm.register_webhook(receiver.url, ["deal.won"])
    url = f"sqlite:///{workdir / 'spojka.sqlite'}"
    upgrade(url)
    db = make_engine(url)
    config = {"url": crm.url, "token": crm.personal_token, "webhook_secret": secret}
    service.save_connection(
        db=db, name="crm", kind="bottlecrm", config=config, mapping_yaml=default_mapping()
    )
    engine = SyncEngine(db)
    received, stored = [], []
    for i in range(deals):
        deal = new_deal(1000 + i)
        started = time.perf_counter()
        client.update("opportunities", deal, {"stage": "CLOSED_WON"})
        arrived, headers, body = receiver.next_event("deal.won")
        received.append((arrived - started) * 1000)
        inbox.receive(engine=engine, connection="crm", headers=headers, body=body)
        inbox.process_pending(engine=engine)
        record = service.find_record(db=db, system="crm", entity="Opportunity", external_id=deal)
        assert record["data"]["stage"] == "won", record
        stored.append((time.perf_counter() - started) * 1000)
    engine.close()
    db.dispose()
    receiver.close()
    client.close()
    return {
        "deal_won_patch_baseline_ms_p50": round(statistics.median(baseline), 1),
        "deal_won_webhook_received_ms_p50": round(statistics.median(received), 1),
        "deal_won_webhook_received_ms_p95": _percentile(received, 0.95),
        "deal_won_to_canonical_store_ms_p50": round(statistics.median(stored), 1),
        "deal_won_to_canonical_store_ms_p95": _percentile(stored, 0.95),
        "deals": deals,
    }


def bench_deal_won_via_api(
    crm: bottlecrm.BottleCRMInstance, deals: int, workdir: Path
) -> dict[str, Any]:
    """The production path: BottleCRM → Spojka's webhook API → inbox worker → store."""
    import uvicorn

    from spojka.api.app import API_ROUTERS, create_app
    from spojka.bootstrap import bootstrap, reset
    from spojka.core.errors import NotFoundError
    from spojka.core.settings import load_settings
    from spojka.localsystems.common import wait_for_http
    from spojka.sync import router as sync_router

    settings = load_settings(
        data_dir=workdir / "api-data", database_url=f"sqlite:///{workdir / 'api.sqlite'}"
    )
    instance = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    app = create_app(instance)
    if sync_router.router not in API_ROUTERS:
        app.include_router(sync_router.router, prefix="/api/v1")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_http(f"http://127.0.0.1:{port}/health", timeout=30)
    _endpoint, secret = crm.register_webhook(
        f"http://127.0.0.1:{port}/api/v1/webhooks/crm", ["deal.won"]
    )
    service.save_connection(
        db=instance.engine,
        name="crm",
        kind="bottlecrm",
        config={"url": crm.url, "token": crm.personal_token, "webhook_secret": secret},
        mapping_yaml=default_mapping(),
    )
    client = BottleCRMClient(crm.url, crm.personal_token)
    account = client.create("accounts", {"name": f"Sklárna Nový Bor {secrets.token_hex(3)}"})
    latencies = []
    for i in range(deals):
        deal = client.create(
            "opportunities",
            {
                "name": f"Sklářská pec {i}",
                "account": account,
                "currency": "EUR",
                "amount": "61000",
                "stage": "PROPOSAL",
                "closed_on": "2026-12-31",
            },
        )
        started = time.perf_counter()
        client.update("opportunities", deal, {"stage": "CLOSED_WON"})
        deadline = started + 60
        while time.perf_counter() < deadline:
            try:
                record = service.find_record(
                    db=instance.engine, system="crm", entity="Opportunity", external_id=deal
                )
                if record["data"].get("stage") == "won":
                    break
            except NotFoundError:
                pass
            time.sleep(0.005)
        else:
            raise RuntimeError(f"deal {deal} never reached the store")
        latencies.append((time.perf_counter() - started) * 1000)
    client.close()
    server.should_exit = True
    thread.join(timeout=10)
    sync_router.stop_workers()
    reset()
    return {
        "deal_won_via_api_to_store_ms_p50": round(statistics.median(latencies), 1),
        "deal_won_via_api_to_store_ms_p95": _percentile(latencies, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=120, help="accounts written per side")
    parser.add_argument("--read-rounds", type=int, default=2, help="full listings per side")
    parser.add_argument("--deals", type=int, default=15, help="deals won (and baseline)")
    args = parser.parse_args()

    started = time.perf_counter()
    crm = bottlecrm.start()
    ready_s = round(time.perf_counter() - started, 1)
    print(f"BottleCRM ready at {crm.url} after {ready_s}s", file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bottlecrm-") as tmp:
            figures: dict[str, Any] = {"bottlecrm_ready_s": ready_s}
            figures.update(bench_writes(crm, args.records))
            print("writes done", file=sys.stderr)
            figures.update(bench_reads(crm, args.read_rounds))
            print("reads done", file=sys.stderr)
            figures.update(bench_deal_won(crm, args.deals, Path(tmp)))
            figures.update(bench_deal_won_via_api(crm, args.deals, Path(tmp)))
            figures["total_s"] = round(time.perf_counter() - started, 1)
    finally:
        crm.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
