"""Redmine connector throughput: Spojka's RedmineConnector vs a minimal direct httpx client.

Starts a real Redmine from the golden snapshot (installing it on first use), seeds issues,
then measures in the same run:
- read: records/s polling the ``tasks`` stream from the start (Spojka: connector.read_page
  with its updated_on/skip page tokens and shaping; baseline: bare ``GET /issues.json``
  offset paging with the same filters);
- write: records/s creating issues (Spojka: connector.write with its idempotency lookup by
  the "Spojka ID" custom field; baseline: one bare ``POST /issues.json`` per issue);
- latency from a change in Redmine to the canonical store with the sync engine polling every
  5 s (overlap window 30 s), against the bare round trip of reading that issue back.

Usage: .venv/bin/python bench/connectors_redmine.py [--records 150] [--writes 25]
The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

import spojka.connectors.redmine as package
from spojka.connectors.redmine.connector import RedmineConnector
from spojka.core.db import make_engine, upgrade
from spojka.core.errors import NotFoundError
from spojka.core.logging import configure_logging
from spojka.localsystems import redmine
from spojka.sync import service
from spojka.sync.engine import SyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of_alternating, read_stream


def polling_latency(
    server: redmine.RedmineServer, *, changes: int, interval_s: float
) -> dict[str, float]:
    """Seconds from an edit in Redmine until the canonical store holds it (5 s polling)."""
    config = {"url": server.url, "api_key": server.api_key}
    connector = RedmineConnector(config)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'spojka.sqlite'}"
        upgrade(url)
        db = make_engine(url)
        mapping = (Path(package.__file__).parent / "mappings" / "redmine.yaml").read_text()
        service.save_connection(
            db=db,
            name="pm",
            kind="redmine",
            config=config,
            settings={"overlap_s": 30.0},
            mapping_yaml=mapping,
        )
        project = connector.write(
            connector.stream("projects"),
            {"name": "Latence – Brno"},
            external_id=None,
            idempotency_key="latency-project",
        )
        tasks = connector.stream("tasks")
        issue = connector.write(
            tasks,
            {"project_id": project.external_id, "subject": "Sledovaný úkol"},
            external_id=None,
            idempotency_key="latency-issue",
        )
        engine = SyncEngine(db)
        engine.run("pm", streams=["tasks"])
        stop = threading.Event()
        poll_times: list[float] = []

        def poller() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                engine.run("pm", streams=["tasks"])
                poll_times.append(time.perf_counter() - started)
                stop.wait(max(0.0, interval_s - (time.perf_counter() - started)))

        thread = threading.Thread(target=poller, daemon=True)
        thread.start()
        latencies, baseline = [], []
        rng = random.Random(5)
        try:
            for i in range(changes):
                time.sleep(rng.uniform(0, interval_s))
                subject = f"Sledovaný úkol – změna č. {i}"
                connector.write(
                    tasks,
                    {"subject": subject},
                    external_id=issue.external_id,
                    idempotency_key=f"latency-{i}",
                )
                changed = time.perf_counter()
                t0 = time.perf_counter()
                connector.client.get(f"/issues/{issue.external_id}.json")
                baseline.append(time.perf_counter() - t0)
                while True:
                    try:
                        data = service.find_record(
                            db=db, system="pm", entity="Task", external_id=issue.external_id
                        )["data"]
                    except NotFoundError:
                        data = {}
                    if data.get("subject") == subject:
                        latencies.append(time.perf_counter() - changed)
                        break
                    time.sleep(0.05)
        finally:
            stop.set()
            thread.join()
            engine.close()
            db.dispose()
            connector.close()
    return {
        "poll_interval_s": interval_s,
        "latency_median_s": round(statistics.median(latencies), 2),
        "latency_max_s": round(max(latencies), 2),
        "poll_duration_median_s": round(statistics.median(poll_times), 2),
        "direct_read_back_median_s": round(statistics.median(baseline), 3),
    }


def read_direct(http: httpx.Client, tracker_filter: str) -> int:
    offset, total = 0, 0
    while True:
        body = http.get(
            "/issues.json",
            params={
                "status_id": "*",
                "tracker_id": tracker_filter,
                "sort": "updated_on,id",
                "offset": offset,
                "limit": 100,
            },
        ).json()
        items = body["issues"]
        total += len(items)
        offset += len(items)
        if not items or offset >= body["total_count"]:
            return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=150)
    parser.add_argument("--writes", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changes", type=int, default=6)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()
    configure_logging("warning")

    started = time.perf_counter()
    server = redmine.start()
    startup_s = time.perf_counter() - started
    try:
        latency = polling_latency(server, changes=args.changes, interval_s=args.poll_interval)
        http = httpx.Client(
            base_url=server.url, timeout=60, headers={"X-Redmine-API-Key": server.api_key}
        )
        project = http.post(
            "/projects.json",
            json={"project": {"name": "Výkonnostní test – Ostrava", "identifier": "vykon"}},
        ).json()["project"]
        task_tracker = server.ids["trackers"]["Task"]
        for i in range(args.records):
            http.post(
                "/issues.json",
                json={
                    "issue": {
                        "project_id": project["id"],
                        "tracker_id": task_tracker,
                        "subject": f"Úkol č. {i}: příprava podkladů",
                        "description": "Žluťoučký kůň",
                    }
                },
            )
        connector = RedmineConnector({"url": server.url, "api_key": server.api_key})
        tracker_filter = connector._tracker_filter("tasks")
        (direct_read, direct_read_s), (spojka_read, spojka_read_s) = best_of_alternating(
            lambda: read_direct(http, tracker_filter),
            lambda: read_stream(connector, "tasks", since="2000-01-01T00:00:00Z"),
            args.rounds,
        )

        t0 = time.perf_counter()
        for i in range(args.writes):
            http.post(
                "/issues.json",
                json={
                    "issue": {
                        "project_id": project["id"],
                        "tracker_id": task_tracker,
                        "subject": f"Přímý zápis {i}",
                        "estimated_hours": 2,
                    }
                },
            ).raise_for_status()
        direct_write_s = time.perf_counter() - t0
        tasks = connector.stream("tasks")
        t0 = time.perf_counter()
        for i in range(args.writes):
            connector.write(
                tasks,
                {
                    "project_id": str(project["id"]),
                    "subject": f"Zápis přes Spojku {i}",
                    "estimated_hours": 2,
                },
                external_id=None,
                idempotency_key=f"bench-{i}",
            )
        spojka_write_s = time.perf_counter() - t0
        connector.close()
        http.close()
    finally:
        server.stop()

    result = {
        "benchmark": "connectors_redmine",
        "redmine_start_s": round(startup_s, 2),
        "records": spojka_read,
        "read_direct_rps": round(direct_read / direct_read_s, 1),
        "read_spojka_rps": round(spojka_read / spojka_read_s, 1),
        "read_overhead_ratio": round(spojka_read_s / direct_read_s, 3),
        "writes": args.writes,
        "write_direct_rps": round(args.writes / direct_write_s, 1),
        "write_spojka_rps": round(args.writes / spojka_write_s, 1),
        "write_overhead_ratio": round(spojka_write_s / direct_write_s, 3),
        "change_to_canonical": latency,
        "note": "Spojka's write = lookup by the Spojka ID custom field + create; "
        "the direct write is one bare POST",
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
