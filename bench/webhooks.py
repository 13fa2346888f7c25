"""Webhook intake: signed events posted on loopback to ``POST /api/v1/webhooks/{connection}``
of a real Spojka API process (uvicorn, one process), stored durably before the 2xx answer.

Phase 1 (throughput), ``--runs`` times on a fresh database each: ``--events`` signed events
from ``--concurrency`` keep-alive connections; events/s counts 2xx answers, latency per
request (p50/p99). Each run is paired with a baseline run of the same load generator
against a bare ASGI app under the same uvicorn that answers 202 without verifying or
storing anything: the ceiling of HTTP + load generator on this machine at that moment
(the machine is shared, so the ratio is steadier than the absolute figure). The load
generator's own CPU time and the server's are measured per event. After the load the
running server's inbox worker processes the backlog (``drain_s``).
Phase 2 (crash): the same load against a fresh database, and the server is killed with
SIGKILL once about half the events were answered; the loader notes every event that got a
2xx. The server is restarted and its inbox worker processes the stored events. Every
acknowledged event must be processed exactly once: one canonical record, one version.

    .venv/bin/python bench/webhooks.py [--events 20000] [--concurrency 16] [--runs 3]
                                       [--db sqlite|postgresql]

The last line is one JSON object: events_per_s and p99_ms (medians of the runs, with each
run's figures), acknowledged, processed_once, lost, duplicated (summed over the runs), the
baseline, CPU per event, and the crash phase's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    free_port,
    median,
    percentile,
    print_result,
    spojka_env,
    stop_process,
    temporary_pg_database,
    wait_http,
)

SECRET = "bench-webhook-secret"
MAPPING = """
mapping: hooks
version: 1
streams:
  accounts:
    entity: Account
    fields:
      name: name
      ico: ico
      email: email
"""


def _ico(n: int) -> str:
    base = f"{n % 10_000_000:07d}"
    total = sum(int(d) * w for d, w in zip(base, range(8, 1, -1), strict=True))
    return base + str((11 - total % 11) % 10)


def server_main(port: int) -> None:
    """Child process: the real app (with the sync router) under uvicorn."""
    import uvicorn

    from spojka.api.app import API_ROUTERS, create_app
    from spojka.bootstrap import bootstrap
    from spojka.sync import router as sync_router

    instance = bootstrap(migrate=True, create_key=True, configure_logs=False)
    app = create_app(instance)
    if sync_router.router not in API_ROUTERS:  # until the lead mounts it in create_app
        app.include_router(sync_router.router, prefix="/api/v1")

    # events stored before a crash are processed as soon as the server is back
    sync_router.ensure_worker(instance.engine).wake()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def baseline_main(port: int) -> None:
    """Child process: the same uvicorn with a bare app that answers 202 and does nothing."""
    import uvicorn

    answer = b'{"stored":1,"duplicates":0}'

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        status = 202 if scope["method"] == "POST" else 200
        headers = [(b"content-type", b"application/json"), (b"content-length", b"27")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _requests(count: int) -> list[tuple[str, bytes, str]]:
    from spojka.connectors.base import sign_payload

    out = []
    stamp = int(time.time())
    for i in range(count):
        body = json.dumps(
            {
                "event_id": f"evt-{i}",
                "stream": "accounts",
                "id": str(i),
                "version": 1,
                "record": {"name": f"Firma {i} s.r.o.", "ico": _ico(i), "email": f"info@f{i}.cz"},
            }
        ).encode()
        out.append((f"evt-{i}", body, sign_payload(SECRET, body, timestamp=stamp)))
    return out


async def _load(
    port: int, items: list[Any], concurrency: int, stop_after: int | None, on_half: Any = None
) -> dict[str, Any]:
    latencies: list[float] = []
    acked: list[str] = []
    errors = 0
    queue = list(reversed(items))
    fired = False

    async def connection() -> None:
        nonlocal errors, fired
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        try:
            while queue:
                event_id, body, signature = queue.pop()
                head = (
                    f"POST /api/v1/webhooks/hooks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    f"X-Spojka-Signature: {signature}\r\n\r\n"
                ).encode()
                t0 = time.perf_counter()
                writer.write(head + body)
                try:
                    response = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # server gone: this event was not acknowledged
                length = 0
                for line in response.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if response[9:10] == b"2":
                    acked.append(event_id)
                    if stop_after is not None and len(acked) >= stop_after and not fired:
                        fired = True
                        on_half()
                else:
                    errors += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return {
        "seconds": time.perf_counter() - started,
        "latencies": latencies,
        "acked": acked,
        "errors": errors,
    }


def _start_server(env: dict[str, str], port: int, role: str = "server") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


def _prepare(env: dict[str, str], folder: Path) -> None:
    """Migrate and create the webhook connection (file connector with a secret)."""
    code = (
        "from spojka.bootstrap import bootstrap\n"
        "from spojka.sync import service\n"
        "app = bootstrap(migrate=True, create_key=True, configure_logs=False)\n"
        f"service.save_connection(db=app.engine, name='hooks', kind='file', config={{'path': "
        f"{str(folder)!r}, 'webhook_secret': {SECRET!r}, 'streams': {{'accounts': "
        f"{{'entity': 'Account'}}}}}}, mapping_yaml={MAPPING!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _db_url(env: dict[str, str]) -> str:
    return (
        env.get("SPOJKA_DATABASE_URL")
        or f"sqlite:///{Path(env['SPOJKA_DATA_DIR']) / 'spojka.sqlite'}"
    )


def _drain(env: dict[str, str]) -> float:
    """Seconds until the running server's inbox worker has processed every stored event."""
    import sqlalchemy as sa

    from spojka.core.db import make_engine

    db = make_engine(_db_url(env))
    started = time.perf_counter()
    deadline = time.monotonic() + 600
    with db.connect() as conn:
        while conn.execute(
            sa.text("SELECT count(*) FROM sync_webhook_event WHERE status = 'pending'")
        ).scalar():
            if time.monotonic() > deadline:
                break
            conn.commit()
            time.sleep(0.05)
    db.dispose()
    return time.perf_counter() - started


def _count(env: dict[str, str], acked: list[str]) -> dict[str, Any]:
    """Wait until the inbox is drained, then check each acknowledged event."""
    import sqlalchemy as sa

    from spojka.core.db import make_engine

    db = make_engine(_db_url(env))
    deadline = time.monotonic() + 600
    with db.connect() as conn:
        while conn.execute(
            sa.text("SELECT count(*) FROM sync_webhook_event WHERE status = 'pending'")
        ).scalar():
            if time.monotonic() > deadline:
                break
            conn.commit()
            time.sleep(0.2)
        stored = dict(
            conn.execute(sa.text("SELECT event_id, status FROM sync_webhook_event")).all()
        )
        links = dict(
            conn.execute(
                sa.text("SELECT external_id, count(*) FROM sync_link GROUP BY external_id")
            ).all()
        )
        versions = dict(
            conn.execute(
                sa.text(
                    "SELECT l.external_id, r.version FROM sync_link l JOIN sync_record r "
                    "ON r.canonical_id = l.canonical_id"
                )
            ).all()
        )
    db.dispose()
    lost = duplicated = processed_once = 0
    for event_id in acked:
        ext = event_id.removeprefix("evt-")
        if stored.get(event_id) != "processed" or ext not in links:
            lost += 1
        elif links[ext] != 1 or versions.get(ext) != 1:
            duplicated += 1
        else:
            processed_once += 1
    return {
        "stored": len(stored),
        "processed_once": processed_once,
        "lost": lost,
        "duplicated": duplicated,
    }


def _measured_load(
    proc: subprocess.Popen[str], port: int, items: list[Any], concurrency: int
) -> dict[str, Any]:
    """One load run with the CPU time the server and the load generator spent on it."""
    server0, own0 = _cpu_s(proc.pid), _own_cpu_s()
    run = asyncio.run(_load(port, items, concurrency, None))
    run["server_cpu_s"] = _cpu_s(proc.pid) - server0
    run["loader_cpu_s"] = _own_cpu_s() - own0
    return run


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        server_main(args.port)
        return
    if args.role == "baseline":
        baseline_main(args.port)
        return

    runs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spojka-hooks-")))

        def instance(name: str) -> dict[str, str]:
            url = None if args.db == "sqlite" else stack.enter_context(temporary_pg_database())
            env = spojka_env(work / name, url)
            (work / name / "files").mkdir(parents=True)
            _prepare(env, work / name / "files")
            return env

        # phase 1: throughput, each run paired with a baseline run on the same machine state
        for n in range(args.runs):
            items = _requests(args.events)
            port = free_port()
            bare = _start_server(spojka_env(work / f"bare{n}"), port, role="baseline")
            base = _measured_load(bare, port, items, args.concurrency)
            stop_process(bare)

            env = instance(f"load{n}")
            port = free_port()
            server = _start_server(env, port)
            run = _measured_load(server, port, items, args.concurrency)
            drain_s = _drain(env)
            stop_process(server)
            counted = _count(env, run["acked"])
            acked = len(run["acked"])
            runs.append(
                {
                    "events_per_s": round(acked / run["seconds"]),
                    "p50_ms": round(percentile(run["latencies"], 50) * 1000, 2),
                    "p99_ms": round(percentile(run["latencies"], 99) * 1000, 2),
                    "baseline_events_per_s": round(len(base["acked"]) / base["seconds"]),
                    "baseline_p99_ms": round(percentile(base["latencies"], 99) * 1000, 2),
                    "server_cpu_us_per_event": round(run["server_cpu_s"] / max(acked, 1) * 1e6),
                    "loader_cpu_us_per_event": round(run["loader_cpu_s"] / max(acked, 1) * 1e6),
                    "loader_cpu_share": round(run["loader_cpu_s"] / run["seconds"], 3),
                    "drain_s": round(drain_s, 2),
                    "acknowledged": acked,
                    "errors": run["errors"],
                    **{k: counted[k] for k in ("processed_once", "lost", "duplicated")},
                    "load_average": round(os.getloadavg()[0], 2),
                }
            )
            print(json.dumps({"run": n + 1, **runs[-1]}), flush=True)

        # phase 2: kill -9 during the load
        env2 = instance("crash")
        port2 = free_port()
        server2 = _start_server(env2, port2)
        crash_items = _requests(args.events)
        crash = asyncio.run(
            _load(
                port2,
                crash_items,
                args.concurrency,
                args.events // 2,
                on_half=lambda: os.kill(server2.pid, signal.SIGKILL),
            )
        )
        server2.wait()
        server2 = _start_server(env2, port2)
        crash_counted = _count(env2, crash["acked"])
        stop_process(server2)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    eps = [float(r["events_per_s"]) for r in runs]
    p99 = [float(r["p99_ms"]) for r in runs]
    result = {
        "bench": "webhooks",
        "db": args.db,
        "events": args.events,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "server": _server_stack(),
        "events_per_s": round(med("events_per_s")),
        "events_per_s_spread": _spread(eps),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "p99_ms_spread": _spread(p99),
        "baseline_events_per_s": round(med("baseline_events_per_s")),
        "ratio_to_baseline": round(med("events_per_s") / max(med("baseline_events_per_s"), 1), 3),
        "server_cpu_us_per_event": med("server_cpu_us_per_event"),
        "loader_cpu_us_per_event": med("loader_cpu_us_per_event"),
        "loader_cpu_share": med("loader_cpu_share"),
        "drain_s": med("drain_s"),
        "acknowledged": sum(r["acknowledged"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "processed_once": sum(r["processed_once"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "crash_acknowledged": len(crash["acked"]),
        "crash_processed_once": crash_counted["processed_once"],
        "crash_lost": crash_counted["lost"],
        "crash_duplicated": crash_counted["duplicated"],
        "per_run": runs,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(
        f"{result['events_per_s']} events/s (median of {args.runs}; "
        f"{min(eps):.0f}–{max(eps):.0f}), p99 {result['p99_ms']} ms; baseline "
        f"{result['baseline_events_per_s']}/s; after kill -9: {result['crash_acknowledged']} "
        f"acknowledged, {result['crash_lost']} lost, {result['crash_duplicated']} duplicated"
    )
    print_result(result)


def _server_stack() -> str:
    """Which HTTP parser and event loop uvicorn picks here (it prefers the C ones)."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn/{http}/{loop}"


if __name__ == "__main__":
    main()
