"""Redmine connector throughput: Spojka's RedmineConnector vs a minimal direct httpx client.

Starts a real Redmine from the golden snapshot (installing it on first use), seeds issues,
then measures in the same run:
- read: records/s polling the ``tasks`` stream from the start (Spojka: connector.read_page
  with its updated_on/skip page tokens and shaping; baseline: bare ``GET /issues.json``
  offset paging with the same filters);
- write: records/s creating issues (Spojka: connector.write with its idempotency lookup by
  the "Spojka ID" custom field; baseline: one bare ``POST /issues.json`` per issue).

Usage: .venv/bin/python bench/connectors_redmine.py [--records 150] [--writes 25]
The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from spojka.connectors.redmine.connector import RedmineConnector
from spojka.core.logging import configure_logging
from spojka.localsystems import redmine


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


def read_spojka(connector: RedmineConnector) -> int:
    stream = connector.stream("tasks")
    token, total = None, 0
    while True:
        page = connector.read_page(stream, since="2000-01-01T00:00:00Z", page_token=token)
        total += len(page.records)
        if page.next_token is None:
            return total
        token = page.next_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=150)
    parser.add_argument("--writes", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging("warning")

    started = time.perf_counter()
    server = redmine.start()
    startup_s = time.perf_counter() - started
    try:
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
        read_direct(http, tracker_filter)
        read_spojka(connector)
        direct_times, spojka_times = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            direct_read = read_direct(http, tracker_filter)
            direct_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            spojka_read = read_spojka(connector)
            spojka_times.append(time.perf_counter() - t0)
        direct_read_s, spojka_read_s = min(direct_times), min(spojka_times)

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
        "note": "Spojka's write = lookup by the Spojka ID custom field + create; "
        "the direct write is one bare POST",
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
