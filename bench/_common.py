"""Helpers the benchmarks share: free ports, a Spojka instance in a temp folder, statistics,
the labelled-document generator."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "SPOJKA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spojka_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment of one independent instance: its data folder and its database only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOJKA_")}
    env["SPOJKA_DATA_DIR"] = str(data_dir)
    # A spojka.toml in the caller's working directory must not leak into the bench.
    env["SPOJKA_CONFIG"] = str(data_dir / "spojka.toml")
    env["SPOJKA_LOG_LEVEL"] = "warning"
    if database_url:
        env["SPOJKA_DATABASE_URL"] = database_url
    return env


def spojka_cli(args: Sequence[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run ``spojka <args>`` like a user would and return its stdout; fail loudly."""
    proc = subprocess.run(
        [sys.executable, "-m", "spojka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env["SPOJKA_DATA_DIR"],
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"`spojka {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Wait until ``url`` answers 200, or stop with the server's own output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise SystemExit(f"server exited with {proc.returncode} before {url} answered:\n{out}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; ``values`` need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def read_stream(connector: Any, stream_name: str, since: str | None = None) -> int:
    """Page through one stream with the connector, as the engine does; the records read."""
    stream = connector.stream(stream_name)
    token, total = None, 0
    while True:
        page = connector.read_page(stream, since=since, page_token=token)
        total += len(page.records)
        if page.next_token is None:
            return total
        token = page.next_token


def best_of_alternating(
    first: Callable[[], int], second: Callable[[], int], rounds: int
) -> tuple[tuple[int, float], tuple[int, float]]:
    """Warm both, then alternate them ``rounds`` times; (count, best seconds) of each.

    Alternating keeps a slowly warming server (or a noisy neighbour) from favouring the side
    that runs second.
    """
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    counts = [0, 0]
    for _ in range(rounds):
        for i, fn in enumerate((first, second)):
            t0 = time.perf_counter()
            counts[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return (counts[0], min(times[0])), (counts[1], min(times[1]))


@contextmanager
def temporary_pg_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database for one bench run, dropped afterwards."""
    name = f"spojka_bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is not reachable at {admin_url}: {exc.orig}") from None
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def print_result(result: dict[str, Any]) -> None:
    """The figures as one JSON object on the last line (what callers parse)."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=False), flush=True)


def documents_testdata(name: str) -> Any:
    """``tests/data/documents/<name>.py`` (the invoice generator or the scorer) as a module."""
    module_name = f"spojka_docs_{name}"
    spec = importlib.util.spec_from_file_location(
        module_name, ROOT / "tests" / "data" / "documents" / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
