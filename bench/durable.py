"""Durable step overhead: a 3-step no-op flow per second on SQLite and PostgreSQL.

The flow is written the way every Spojka flow is (``spojka.runtime.flow`` + ``step``), so
each run also writes its run record (start and finish). It runs on a real launched runtime
(``engine.launch``) in a fresh data folder, on a fresh SQLite file and on a temporary
PostgreSQL database (created on 127.0.0.1:5432 and dropped afterwards), in two ways:

- ``direct``: the flow called in this process, one after another (latency-bound);
- ``queued``: ``engine.enqueue`` puts the runs on the ``flows`` queue, the runtime in this
  process works them off with the queue's real limits; timed from the first enqueue to
  the last result.

For a breakdown, ``dbos_direct`` runs the same three steps in a bare ``DBOS.workflow``
(no run record). The baseline is the same three plain function calls with no runtime.

    .venv/bin/python bench/durable.py [--db sqlite|postgresql|both] [--n 30] [--repeat 3]
                                      [--relaxed-commits]

The last line is one JSON object; rates are flows per second (median of the repeats).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, print_result, temporary_pg_database
from spojka import bootstrap as spojka_bootstrap
from spojka.core.settings import load_settings
from spojka.runtime import engine, flow, step

FLOW_NAME = "bench.noop3"

# ---------------------------------------------------------------- what is measured


def _one(x: int) -> int:
    return x


def _two(x: int) -> int:
    return x


def _three(x: int) -> int:
    return x


def plain_noop3(x: int) -> int:
    """The baseline: the same three calls, no runtime."""
    return _three(_two(_one(x)))


# The same bodies as durable steps. Defined at import time, i.e. before engine.launch.
_step_one = step(name="bench.one")(_one)
_step_two = step(name="bench.two")(_two)
_step_three = step(name="bench.three")(_three)


@flow(FLOW_NAME)
def noop3(x: int = 0) -> int:
    return _step_three(_step_two(_step_one(x)))


@DBOS.workflow(name="bench.dbos_noop3")
def dbos_noop3(x: int = 0) -> int:
    return _step_three(_step_two(_step_one(x)))


# ---------------------------------------------------------------- timing

# Database transactions committed in this process by every engine (Spojka's and the
# runtime's, background polling included). A writing commit waits for the disk (fsync).
COMMITS = [0]


@event.listens_for(Engine, "commit")
def _count_commit(_conn: Connection) -> None:
    COMMITS[0] += 1


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def time_plain(n: int) -> float:
    """Flows per second for plain calls; many iterations, since each is ~0.1 µs."""
    loops = max(n, 200_000)
    start = time.perf_counter()
    for i in range(loops):
        plain_noop3(i)
    return rate(loops, time.perf_counter() - start)


def time_direct(fn: Callable[[int], int], n: int) -> tuple[float, float]:
    """Flows per second and database commits per flow."""
    commits = COMMITS[0]
    start = time.perf_counter()
    for i in range(n):
        if fn(i) != i:
            raise SystemExit(f"{fn.__name__} returned a wrong result")
    return rate(n, time.perf_counter() - start), (COMMITS[0] - commits) / n


def fsync_ms(folder: Path, count: int = 50) -> float:
    """How long one small write + fsync takes in ``folder``: what a SQLite commit waits for."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 128)
            os.fsync(fd)
        return (time.perf_counter() - start) / count * 1000
    finally:
        os.close(fd)
        path.unlink()


def pg_commit_ms(url: str, count: int = 50) -> float:
    """How long one committed one-row insert takes on the PostgreSQL server."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE TABLE bench_commit_probe (x integer)"))
            conn.commit()
            start = time.perf_counter()
            for i in range(count):
                conn.execute(sa.text("INSERT INTO bench_commit_probe VALUES (:x)"), {"x": i})
                conn.commit()
            elapsed = time.perf_counter() - start
            conn.execute(sa.text("DROP TABLE bench_commit_probe"))
            conn.commit()
        return elapsed / count * 1000
    finally:
        engine.dispose()


def time_queued(n: int, timeout: float) -> float:
    settings = spojka_bootstrap.current().settings
    start = time.perf_counter()
    ids = [
        engine.enqueue(settings, FLOW_NAME, workflow_id=f"bench-{uuid.uuid4().hex}", x=i)
        for i in range(n)
    ]
    for i, workflow_id in enumerate(ids):
        if engine.wait_result(settings, workflow_id, timeout=timeout) != i:
            raise SystemExit(f"queued run {workflow_id} returned a wrong result")
    return rate(n, time.perf_counter() - start)


def relax_commits() -> None:
    """What-if for ``--relaxed-commits``: commits stop waiting for the disk.

    SQLite ``synchronous=NORMAL`` on every connection (Spojka's engine has it already,
    the runtime's own connections do not); PostgreSQL ``synchronous_commit=off``. A
    process crash loses nothing; an OS crash or power cut can lose the last commits.
    """

    @event.listens_for(Engine, "connect")
    def _relaxed(dbapi_conn: Any, _record: Any) -> None:
        if dbapi_conn.__class__.__module__.startswith("sqlite3"):
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        else:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            dbapi_conn.execute("SET synchronous_commit TO off")
            dbapi_conn.autocommit = autocommit


@contextmanager
def launched(database: str, data_dir: Path) -> Iterator[str]:
    """A migrated instance with its runtime launched; yields the database URL."""
    with contextmanager(_database_url)(database, data_dir) as url:
        settings = load_settings(
            data_dir=data_dir, database_url=url, log_level="warning", profile="test"
        )
        spojka_bootstrap.bootstrap(settings, migrate=True, create_key=True)
        engine.launch(settings, executor_id="bench")
        try:
            yield settings.resolved_database_url
        finally:
            engine.shutdown()
            spojka_bootstrap.reset()


def _database_url(database: str, data_dir: Path) -> Iterator[str | None]:
    if database == "sqlite":
        yield None  # the default: SQLite (WAL) in the data folder
        return
    with temporary_pg_database() as url:
        yield url


def bench_database(database: str, n: int, repeat: int, timeout: float) -> dict[str, float]:
    runs: dict[str, list[float]] = {
        "direct": [],
        "queued": [],
        "dbos_direct": [],
        "commits": [],
        "dbos_commits": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix=f"spojka-bench-durable-{database}-") as tmp,
        launched(database, Path(tmp)) as url,
    ):
        # Commits wait for the disk: the figures below scale with this latency.
        if database == "sqlite":
            runs["commit_ms"] = [fsync_ms(Path(tmp))]
        else:
            runs["commit_ms"] = [pg_commit_ms(url)]
        time_direct(noop3, min(10, n))  # warm-up: connections, caches
        time_queued(min(10, n), timeout)
        for i in range(repeat):
            for key, fn in (("", noop3), ("dbos_", dbos_noop3)):
                per_s, commits = time_direct(fn, n)
                runs[f"{key}direct"].append(per_s)
                runs[f"{key}commits"].append(commits)
            runs["queued"].append(time_queued(n, timeout))
            print(
                f"{database:10} round {i + 1}: direct {runs['direct'][-1]:7.1f}/s  "
                f"queued {runs['queued'][-1]:7.1f}/s  "
                f"dbos-only {runs['dbos_direct'][-1]:7.1f}/s  "
                f"db transactions/flow {runs['commits'][-1]:.1f} "
                f"(dbos-only {runs['dbos_commits'][-1]:.1f})",
                flush=True,
            )
    return {key: median(values) for key, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=30, help="flows per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per database")
    parser.add_argument("--timeout", type=float, default=300, help="max wait per queued flow")
    parser.add_argument(
        "--relaxed-commits",
        action="store_true",
        help="what-if: commits don't wait for the disk (see relax_commits)",
    )
    args = parser.parse_args()
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")

    if args.relaxed_commits:
        relax_commits()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    plain = median([time_plain(args.n) for _ in range(args.repeat)])
    print(f"plain calls {plain:,.0f}/s", flush=True)
    result: dict[str, Any] = {"plain_per_s": round(plain, 1)}
    for database in databases:
        rates = bench_database(database, args.n, args.repeat, args.timeout)
        prefix = database
        result[f"{prefix}_direct_per_s"] = round(rates["direct"], 1)
        result[f"{prefix}_queued_per_s"] = round(rates["queued"], 1)
        result[f"{prefix}_dbos_only_direct_per_s"] = round(rates["dbos_direct"], 1)
        probe = "fsync" if database == "sqlite" else "commit"
        result[f"{prefix}_{probe}_ms"] = round(rates["commit_ms"], 2)
        result[f"{prefix}_transactions_per_flow"] = round(rates["commits"], 1)
        result[f"{prefix}_dbos_only_transactions_per_flow"] = round(rates["dbos_commits"], 1)
        result[f"{prefix}_direct_ratio"] = rates["direct"] / plain
        result[f"{prefix}_queued_ratio"] = rates["queued"] / plain
        result[f"{prefix}_direct_ms_per_flow"] = round(1000 / rates["direct"], 3)
        result[f"{prefix}_queued_ms_per_flow"] = round(1000 / rates["queued"], 3)
    result.update(
        {
            "relaxed_commits": args.relaxed_commits,
            "n": args.n,
            "repeat": args.repeat,
            "steps_per_flow": 3,
            "queue": "flows",
            "queue_limits": engine.QUEUES.get("flows", {}),
            "figures": "median over repeats; ratio = durable rate / plain rate",
        }
    )
    print_result(result)


if __name__ == "__main__":
    main()
