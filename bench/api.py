"""API overhead: authenticated ``GET /api/v1/status`` on a real ``spojka serve`` vs a bare app.

Both servers are separate processes run by uvicorn the same way (one process, no access
log). The bare app has the same route with the same JSON shape and nothing else: no auth,
no middleware, no runtime. The load comes from a third process on loopback, a bounded
number of requests per run: ``wrk`` (installed from Debian when missing and we are root)
or, as a fallback, a small asyncio HTTP/1.1 keep-alive client. Runs alternate between the
two servers over several rounds, and the server not being measured is paused (SIGSTOP) so
its background work (Spojka's queue polling) does not disturb the other.

    .venv/bin/python bench/api.py [--rounds 7] [--requests 3000] [--concurrency 8]
                                  [--loadgen auto|wrk|python]

The last line is one JSON object: spojka_rps, bare_rps, ratio, p50/p99 latencies, requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    free_port,
    median,
    percentile,
    print_result,
    spojka_cli,
    spojka_env,
    stop_process,
    wait_http,
)

STATUS_PATH = "/api/v1/status"

# ---------------------------------------------------------------- the bare baseline app


def bare_app(async_route: bool) -> Any:
    """The same route and JSON shape as Spojka's status route, and nothing else."""
    from fastapi import FastAPI

    app = FastAPI()
    started = time.monotonic()

    def status() -> dict[str, Any]:
        return {
            "version": "0.1.0",
            "profile": "dev",
            "database": "sqlite",
            "runtime": "running",
            "uptime_s": round(time.monotonic() - started, 1),
            "you": {"name": "bench", "role": "viewer"},
        }

    # Declared like Spojka's route (plain `def` runs in the thread pool, `async def` on the
    # event loop), so the two differ only by what Spojka adds.
    if async_route:

        @app.get(STATUS_PATH)
        async def get_status_async() -> dict[str, Any]:
            return status()

    else:

        @app.get(STATUS_PATH)
        def get_status() -> dict[str, Any]:
            return status()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def spojka_route_is_async() -> bool:
    import inspect

    from spojka.api.app import get_status

    return inspect.iscoroutinefunction(get_status)


def serve_bare(port: int, async_route: bool) -> None:
    import uvicorn

    # Same uvicorn settings as `spojka serve` (spojka/cli/core_commands.py).
    app = bare_app(async_route)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- load generators

# wrk runs for a duration, so the script stops after BENCH_REQUESTS responses: it times
# them itself (clock_gettime through LuaJIT's ffi), prints BENCH-DONE, and the parent then
# interrupts wrk (SIGINT), which makes wrk call done() with the latency histogram.
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local function now()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local limit = tonumber(os.getenv("BENCH_REQUESTS")) or 1000
local threads = {}
seen, errors, started, elapsed = 0, 0, 0, 0
function setup(thread) table.insert(threads, thread) end
function request()
  if started == 0 then started = now() end
  return wrk.format()
end
function response(status, headers, body)
  seen = seen + 1
  if status ~= 200 then errors = errors + 1 end
  if seen == limit then
    elapsed = now() - started
    io.write("BENCH-DONE\\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local t, e = threads[1], summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.6f, "errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\\n',
    limit, t:get("elapsed"), t:get("errors") + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def find_wrk(allow_install: bool) -> str | None:
    """wrk from PATH; installed from Debian when missing and we may (root, apt-get)."""
    found = shutil.which("wrk")
    if found or not allow_install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    print("wrk missing: installing it from Debian (apt-get) ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            print(f"`{' '.join(cmd)}` failed; using the Python load generator", file=sys.stderr)
            return None
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, token: str, requests: int, concurrency: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT)
        script = fh.name
    try:
        proc = subprocess.Popen(
            [
                wrk,
                "-t1",  # one load thread: the other core is the server's
                f"-c{concurrency}",
                "-d3600s",  # an upper bound only: the script ends the run
                "--timeout",
                "10s",
                "-s",
                script,
                "-H",
                f"Authorization: Bearer {token}",
                url,
            ],
            env={**os.environ, "BENCH_REQUESTS": str(requests)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("BENCH-DONE"):
                proc.send_signal(signal.SIGINT)
                break
        stdout = proc.stdout.read()
        if proc.wait() != 0:
            raise SystemExit(f"wrk failed ({proc.returncode}): {stdout}")
    finally:
        os.unlink(script)
    line = next(ln for ln in stdout.splitlines() if ln.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    return result


async def _python_load(
    host: str, port: int, path: str, token: str, total: int, concurrency: int
) -> dict[str, Any]:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: */*\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    remaining = total
    errors = 0

    async def connection() -> None:
        nonlocal remaining, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if head[9:12] != b"200":
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "errors": errors,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def python_loadgen_main(url: str, token: str, requests: int, concurrency: int) -> None:
    parsed = httpx.URL(url)
    result = asyncio.run(
        _python_load(parsed.host, parsed.port or 80, parsed.path, token, requests, concurrency)
    )
    print("BENCH " + json.dumps(result))


def run_python(url: str, token: str, requests: int, concurrency: int) -> dict[str, Any]:
    """The fallback load generator, in its own process like wrk."""
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--_loadgen",
            url,
            "--_token",
            token,
            "--requests",
            str(requests),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    return result


# ---------------------------------------------------------------- orchestration


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_spojka(data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    """`spojka init`, a viewer token, then `spojka serve` on a free port (SQLite, WAL)."""
    env = spojka_env(data_dir)
    spojka_cli(["init"], env)
    token = spojka_cli(["token", "create", "--role", "viewer", "--name", "bench"], env)
    token = token.strip().splitlines()[-1].strip()
    port = free_port()
    cmd = [sys.executable, "-m", "spojka", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/ready", proc)
    return proc, base, token


def start_bare(async_route: bool) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    flags = ["--_async-route"] if async_route else []
    proc = subprocess.Popen(
        [sys.executable, __file__, "--_serve-bare", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", proc)
    return proc, base


def check_same_shape(spojka_base: str, bare_base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    ours = httpx.get(spojka_base + STATUS_PATH, headers=headers)
    bare = httpx.get(bare_base + STATUS_PATH, headers=headers)
    if ours.status_code != 200 or bare.status_code != 200:
        raise SystemExit(f"status route failed: spojka {ours.status_code} {ours.text[:200]}")
    if set(ours.json()) != set(bare.json()) or ours.json()["you"]["role"] != "viewer":
        raise SystemExit(f"JSON shapes differ: {ours.json()} vs {bare.json()}")
    if httpx.get(spojka_base + STATUS_PATH).status_code != 401:
        raise SystemExit("spojka answered the status route without a token")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating runs per server")
    parser.add_argument("--requests", type=int, default=3000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=8, help="open keep-alive connections")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--idle-seconds", type=float, default=5, help="how long to measure idle server CPU"
    )
    parser.add_argument("--no-pause", action="store_true", help="don't SIGSTOP the idle server")
    parser.add_argument("--_serve-bare", dest="serve_bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--_async-route", dest="async_route", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument("--_loadgen", dest="loadgen_url", help=argparse.SUPPRESS)
    parser.add_argument("--_token", dest="token", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_bare:
        serve_bare(args.serve_bare, args.async_route)
        return
    if args.loadgen_url:
        python_loadgen_main(args.loadgen_url, args.token, args.requests, args.concurrency)
        return

    wrk = None if args.loadgen == "python" else find_wrk(allow_install=True)
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("wrk is not available (apt-get install wrk)")
    loadgen_name = "wrk" if wrk else "python-asyncio"

    def load(url: str, token: str, requests: int) -> dict[str, Any]:
        if wrk:
            return run_wrk(wrk, url, token, requests, args.concurrency)
        return run_python(url, token, requests, args.concurrency)

    with tempfile.TemporaryDirectory(prefix="spojka-bench-api-") as tmp:
        spojka_proc, spojka_base, token = start_spojka(Path(tmp))
        async_route = spojka_route_is_async()
        bare_proc, bare_base = start_bare(async_route)
        procs = {"spojka": spojka_proc, "bare": bare_proc}
        urls = {"spojka": spojka_base + STATUS_PATH, "bare": bare_base + STATUS_PATH}
        try:
            check_same_shape(spojka_base, bare_base, token)
            results: dict[str, list[dict[str, Any]]] = {"spojka": [], "bare": []}

            def measure(name: str, requests: int, keep: bool) -> None:
                other = procs["bare" if name == "spojka" else "spojka"]
                pause: Callable[[int, int], None] = (
                    (lambda _pid, _sig: None) if args.no_pause else os.kill
                )
                pause(other.pid, signal.SIGSTOP)
                cpu_before = cpu_seconds(procs[name].pid)
                try:
                    run = load(urls[name], token, requests)
                finally:
                    pause(other.pid, signal.SIGCONT)
                # Server CPU per request: hardly moved by other load on a shared machine.
                run["cpu_us"] = (cpu_seconds(procs[name].pid) - cpu_before) / requests * 1e6
                if run["errors"]:
                    raise SystemExit(f"{name}: {run['errors']} failed requests in {run}")
                run["rps"] = run["requests"] / run["seconds"]
                if keep:
                    results[name].append(run)
                    print(
                        f"{name:6} {run['rps']:8.0f} req/s  p50 {run['p50_ms']:.2f} ms  "
                        f"p99 {run['p99_ms']:.2f} ms  server CPU {run['cpu_us']:.0f} µs/req  "
                        f"({run['requests']} requests)",
                        flush=True,
                    )

            for name in ("bare", "spojka"):  # warm-up: imports, thread pool, token cache
                measure(name, min(1000, args.requests), keep=False)
            # CPU the servers burn with no requests at all (Spojka's runtime polls its
            # queues); under load it is part of Spojka's CPU per request above.
            idle: dict[str, float] = {}
            before = {name: cpu_seconds(p.pid) for name, p in procs.items()}
            time.sleep(args.idle_seconds)
            for name, p in procs.items():
                idle[name] = (cpu_seconds(p.pid) - before[name]) / args.idle_seconds * 100
            for i in range(args.rounds):
                order = ("bare", "spojka") if i % 2 == 0 else ("spojka", "bare")
                for name in order:
                    measure(name, args.requests, keep=True)
        finally:
            stop_process(spojka_proc)
            stop_process(bare_proc)

    def fig(name: str, key: str) -> float:
        return round(median([r[key] for r in results[name]]), 3)

    spojka_rps, bare_rps = fig("spojka", "rps"), fig("bare", "rps")
    spojka_cpu, bare_cpu = fig("spojka", "cpu_us"), fig("bare", "cpu_us")
    best_spojka = max(r["rps"] for r in results["spojka"])
    best_bare = max(r["rps"] for r in results["bare"])
    print_result(
        {
            "spojka_rps": round(spojka_rps, 1),
            "bare_rps": round(bare_rps, 1),
            "ratio": round(spojka_rps / bare_rps, 3),
            "spojka_p50_ms": fig("spojka", "p50_ms"),
            "spojka_p99_ms": fig("spojka", "p99_ms"),
            "bare_p50_ms": fig("bare", "p50_ms"),
            "bare_p99_ms": fig("bare", "p99_ms"),
            "requests": sum(r["requests"] for rs in results.values() for r in rs),
            # Less sensitive to other load on the machine than the rates above:
            "spojka_best_rps": round(best_spojka, 1),
            "bare_best_rps": round(best_bare, 1),
            "best_ratio": round(best_spojka / best_bare, 3),
            "spojka_cpu_us_per_req": round(spojka_cpu, 1),
            "bare_cpu_us_per_req": round(bare_cpu, 1),
            "cpu_ratio": round(bare_cpu / spojka_cpu, 3),
            "spojka_idle_cpu_pct": round(idle["spojka"], 1),
            "bare_idle_cpu_pct": round(idle["bare"], 1),
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "loadgen": loadgen_name,
            "figures": "median over rounds",
            "status_route": "async def" if async_route else "def",
        }
    )


if __name__ == "__main__":
    main()
