"""Helpers the benchmarks share: free ports, a Spojka instance in a temp folder, statistics."""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
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
