"""Tryton connector throughput: Spojka's TrytonConnector vs a minimal direct JSON-RPC client.

Starts a real Tryton from the golden snapshot (installing it on first use), seeds parties,
then measures in the same run:
- read: records/s paging the ``parties`` stream (Spojka: connector.read_page with shaping
  into canonical-ready records; baseline: bare httpx ``search_read`` with the same fields and
  the same ``id > last`` paging);
- write: records/s creating parties (Spojka: connector.write with its idempotency lookup and
  read-back of the new version; baseline: one bare ``create`` call per party).

Usage: .venv/bin/python bench/connectors_tryton.py [--records 1000] [--writes 100]
The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from spojka.connectors.tryton.client import decode, encode
from spojka.connectors.tryton.connector import TrytonConnector
from spojka.core.logging import configure_logging
from spojka.localsystems import tryton

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of_alternating, read_stream

FIELDS = [
    "name",
    "code",
    "identifiers.type",
    "identifiers.code",
    "contact_mechanisms.type",
    "contact_mechanisms.value",
    "addresses.street",
    "addresses.city",
    "addresses.postal_code",
    "addresses.country.code",
    "create_date",
    "write_date",
]


class DirectClient:
    """The least code that talks to Tryton: login once, post JSON-RPC, decode the result."""

    def __init__(self, server: tryton.TrytonServer) -> None:
        self.url = f"{server.url}{server.database}/rpc/"
        self.http = httpx.Client(timeout=60)
        body = self.http.post(
            self.url,
            json={
                "id": 0,
                "method": "common.db.login",
                "params": [server.user, {"password": server.password}, "en"],
            },
        ).json()
        uid, token = body["result"][:2]
        session = base64.b64encode(f"{server.user}:{uid}:{token}".encode()).decode()
        self.http.headers["Authorization"] = f"Session {session}"
        self.context = self.call("model.res.user.get_preferences", True, {})

    def call(self, method: str, *params: Any) -> Any:
        body = self.http.post(
            self.url, json={"id": 1, "method": method, "params": encode(list(params))}
        ).json()
        if body.get("error"):
            raise RuntimeError(str(body["error"])[:200])
        return decode(body["result"])


def seed(direct: DirectClient, count: int) -> None:
    country = direct.call(
        "model.country.country.search", [("code", "=", "CZ")], 0, 1, None, direct.context
    )[0]
    batch = 200
    for start in range(0, count, batch):
        direct.call(
            "model.party.party.create",
            [
                {
                    "name": f"Zákazník č. {i} – Šťastná firma s.r.o.",
                    "addresses": [
                        [
                            "create",
                            [
                                {
                                    "street": f"Náměstí Míru {i}",
                                    "city": "Brno",
                                    "postal_code": "602 00",
                                    "country": country,
                                }
                            ],
                        ]
                    ],
                    "contact_mechanisms": [
                        ["create", [{"type": "email", "value": f"info{i}@firma.cz"}]]
                    ],
                }
                for i in range(start, min(start + batch, count))
            ],
            direct.context,
        )


def read_direct(direct: DirectClient, page_size: int) -> int:
    last, total = 0, 0
    while True:
        rows = direct.call(
            "model.party.party.search_read",
            [("id", ">", last)],
            0,
            page_size,
            [["id", "ASC"]],
            FIELDS,
            direct.context,
        )
        total += len(rows)
        if len(rows) < page_size:
            return total
        last = rows[-1]["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging("warning")

    started = time.perf_counter()
    server = tryton.start()
    startup_s = time.perf_counter() - started
    try:
        direct = DirectClient(server)
        seed(direct, args.records)
        connector = TrytonConnector(
            {
                "url": server.url,
                "database": server.database,
                "user": server.user,
                "password": server.password,
                "page_size": args.page_size,
            }
        )
        (direct_read, direct_read_s), (spojka_read, spojka_read_s) = best_of_alternating(
            lambda: read_direct(direct, args.page_size),
            lambda: read_stream(connector, "parties"),
            args.rounds,
        )

        t0 = time.perf_counter()
        for i in range(args.writes):
            direct.call(
                "model.party.party.create",
                [{"name": f"Přímý zápis {i}", "addresses": [["create", [{"city": "Olomouc"}]]]}],
                direct.context,
            )
        direct_write_s = time.perf_counter() - t0
        parties = connector.stream("parties")
        t0 = time.perf_counter()
        for i in range(args.writes):
            connector.write(
                parties,
                {"name": f"Zápis přes Spojku {i}", "city": "Olomouc"},
                external_id=None,
                idempotency_key=f"bench-{i}",
            )
        spojka_write_s = time.perf_counter() - t0
        connector.close()
    finally:
        server.stop()

    result = {
        "benchmark": "connectors_tryton",
        "tryton_start_s": round(startup_s, 2),
        "records": spojka_read,
        "read_direct_rps": round(direct_read / direct_read_s, 1),
        "read_spojka_rps": round(spojka_read / spojka_read_s, 1),
        "read_overhead_ratio": round(spojka_read_s / direct_read_s, 3),
        "writes": args.writes,
        "write_direct_rps": round(args.writes / direct_write_s, 1),
        "write_spojka_rps": round(args.writes / spojka_write_s, 1),
        "write_overhead_ratio": round(spojka_write_s / direct_write_s, 3),
        "note": "both write a party with an address; Spojka adds its idempotency lookup and "
        "the read-back of the new version (3 calls vs 1)",
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
