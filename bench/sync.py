"""Sync throughput: 100,000 Accounts from a CSV through Spojka's whole inbound path, with
two baselines on the same rows and database in the same run.

Spojka: file connector → YAML mapping → pydantic contract validation → link table →
version history → upsert into the canonical store, page by page with checkpoints.
Baselines: a plain batched ``executemany`` INSERT (the physical limit) and dlt loading the
same CSV with ``write_disposition="merge"`` on the primary key (first load, then its
re-merge of the first ``--dlt-rerun`` rows). Then Spojka re-reads the same, unchanged input
(checkpoints reset): content hashes make it cheap. Each engine runs in its own child process
so its peak RSS is its own.

    .venv/bin/python bench/sync.py [--records 100000] [--db sqlite|postgresql]
                                   [--dlt-rerun 10000] [--skip-dlt]

Needs the `bench` extra for dlt: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_result, temporary_pg_database

COLUMNS = ["id", "nazev", "ic", "dic", "email", "web", "zmeneno"]
MAPPING = """
mapping: bench
version: 1
streams:
  firmy:
    entity: Firma
    fields:
      name: nazev
      ico: ic
      dic: dic
      email: email
      domain: web
"""
PAGE = 5000
_NAMES = ["Novák", "Svoboda", "Dvořák", "Černý", "Procházka", "Kučera", "Horváth", "Kováč"]


def _ico(n: int) -> str:
    base = f"{n % 10_000_000:07d}"
    total = sum(int(d) * w for d, w in zip(base, range(8, 1, -1), strict=True))
    return base + str((11 - total % 11) % 10)


def write_csv(path: Path, records: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for i in range(records):
            ico = _ico(i)
            writer.writerow(
                [
                    i,
                    f"{_NAMES[i % 8]} a syn s.r.o. {i}",
                    ico,
                    f"CZ{ico}",
                    f"obchod@firma{i}.cz",
                    f"www.firma{i}.cz",
                    f"2026-01-{1 + i * 28 // max(records, 1):02d}T{i % 24:02d}:{i % 60:02d}:00",
                ]
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child roles ----------------------------------------------------------------------------


def role_spojka(url: str, folder: Path) -> dict[str, Any]:
    from spojka.core.db import make_engine, upgrade
    from spojka.sync import service
    from spojka.sync.engine import SyncEngine

    upgrade(url)
    db = make_engine(url)
    service.save_connection(
        db=db,
        name="crm",
        kind="file",
        config={
            "path": str(folder),
            "streams": {
                "firmy": {"entity": "Account", "cursor_field": "zmeneno", "page_size": PAGE}
            },
        },
        mapping_yaml=MAPPING,
    )
    engine = SyncEngine(db)
    started, cpu = time.perf_counter(), time.process_time()
    [first] = engine.poll("crm")
    first_s, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    rss = peak_rss_mb()
    service.reset_cursor(db=db, connection="crm")
    started, cpu = time.perf_counter(), time.process_time()
    [again] = engine.poll("crm")
    again_s, again_cpu = time.perf_counter() - started, time.process_time() - cpu
    with db.connect() as conn:
        import sqlalchemy as sa

        stored = conn.execute(sa.text("SELECT count(*) FROM sync_record")).scalar()
        versions = conn.execute(sa.text("SELECT count(*) FROM sync_record_version")).scalar()
    engine.close()
    return {
        "seconds": first_s,
        "cpu_seconds": first_cpu,
        "created": first.stats.created,
        "rerun_seconds": again_s,
        "rerun_cpu_seconds": again_cpu,
        "rerun_unchanged": again.stats.unchanged + again.stats.stale,
        "stored": stored,
        "versions": versions,
        "peak_rss_mb": rss,
    }


def _batches(path: Path, size: int) -> Iterator[list[tuple[str, ...]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        batch: list[tuple[str, ...]] = []
        for row in reader:
            batch.append(tuple(row))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def role_plain(url: str, csv_path: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    from spojka.core.db import make_engine

    db = make_engine(url)
    cols = ", ".join(f"{c} TEXT" for c in COLUMNS[1:])
    with db.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE plain_accounts (id TEXT PRIMARY KEY, {cols})")
    mark = "?" if url.startswith("sqlite") else "%s"
    sql = f"INSERT INTO plain_accounts VALUES ({', '.join([mark] * len(COLUMNS))})"
    started = time.perf_counter()
    raw = db.raw_connection()
    try:
        cursor = raw.cursor()
        for batch in _batches(csv_path, PAGE):
            cursor.executemany(sql, batch)
            raw.commit()
    finally:
        raw.close()
    seconds = time.perf_counter() - started
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM plain_accounts")).scalar()
    return {"seconds": seconds, "stored": stored}


def role_dlt(url: str, csv_path: Path, work: Path, rerun: int) -> dict[str, Any]:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt

    def rows(limit: int | None = None) -> Iterator[dict[str, Any]]:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                if limit is not None and i >= limit:
                    return
                yield row

    def load(limit: int | None) -> float:
        resource_ = dlt.resource(
            rows(limit), name="accounts", primary_key="id", write_disposition="merge"
        )
        pipeline = dlt.pipeline(
            pipeline_name="bench_sync",
            pipelines_dir=str(work / "dlt"),
            destination=dlt.destinations.sqlalchemy(url),
            dataset_name="dlt_bench",
        )
        started = time.perf_counter()
        pipeline.run(resource_)
        return time.perf_counter() - started

    first = load(None)
    again = load(rerun)
    return {"seconds": first, "rerun_seconds": again, "rerun_records": rerun}


# -- orchestration ----------------------------------------------------------------------------


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--dlt-rerun", type=int, default=10_000)
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--role", choices=["spojka", "plain", "dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role:
        work = Path(args.work)
        csv_path = work / "src" / "firmy.csv"
        if args.role == "spojka":
            result = role_spojka(args.url, csv_path.parent)
        elif args.role == "plain":
            result = role_plain(args.url, csv_path)
        else:
            result = role_dlt(args.url, csv_path, work, args.dlt_rerun)
        result.setdefault("peak_rss_mb", peak_rss_mb())
        print(json.dumps(result))
        return

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spojka-bench-")))
        (work / "src").mkdir()
        write_csv(work / "src" / "firmy.csv", args.records)

        def url(name: str) -> str:
            if args.db == "sqlite":
                return f"sqlite:///{work / (name + '.sqlite')}"
            return stack.enter_context(temporary_pg_database())

        common = ["--work", str(work), "--dlt-rerun", str(args.dlt_rerun)]
        spojka = _child(["--role", "spojka", "--url", url("spojka"), *common])
        plain = _child(["--role", "plain", "--url", url("plain"), *common])
        dlt_result = (
            None if args.skip_dlt else _child(["--role", "dlt", "--url", url("dlt"), *common])
        )

    n = args.records
    rps = n / spojka["seconds"]
    base = n / plain["seconds"]
    result: dict[str, Any] = {
        "bench": "sync",
        "db": args.db,
        "records": n,
        "records_per_s": round(rps),
        "baseline_records_per_s": round(base),
        "dlt_records_per_s": round(n / dlt_result["seconds"]) if dlt_result else None,
        "dlt_remerge_records_per_s": (
            round(dlt_result["rerun_records"] / dlt_result["rerun_seconds"]) if dlt_result else None
        ),
        "ratio": round(rps / base, 4),
        "rerun_records_per_s": round(n / spojka["rerun_seconds"]),
        # this machine is shared: per-CPU-second rates show the cost without the waiting
        "records_per_cpu_s": round(n / spojka["cpu_seconds"]),
        "rerun_records_per_cpu_s": round(n / spojka["rerun_cpu_seconds"]),
        "load_average": round(os.getloadavg()[0], 2),
        "rerun_speedup": round(spojka["seconds"] / spojka["rerun_seconds"], 2),
        "peak_rss_mb": round(spojka["peak_rss_mb"], 1),
        "stored": spojka["stored"],
        "versions": spojka["versions"],
        "rerun_unchanged": spojka["rerun_unchanged"],
        "targets_met": {
            "records_per_s>=25000": rps >= 25_000 if args.db == "sqlite" else None,
            "faster_than_dlt_merge": (rps > n / dlt_result["seconds"]) if dlt_result else None,
            "ratio>=0.05": rps / base >= 0.05,
            "rerun_speedup>=3": spojka["seconds"] / spojka["rerun_seconds"] >= 3,
        },
    }
    print(
        f"Spojka {rps:,.0f} rec/s, plain executemany {base:,.0f} rows/s, "
        f"re-run ×{result['rerun_speedup']}, peak RSS {result['peak_rss_mb']} MB"
    )
    print_result(result)


if __name__ == "__main__":
    main()
