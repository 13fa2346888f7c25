"""Speed: 100,000 company records de-duplicated end to end, Spojka vs Splink 5, same run.

Each engine runs in its own child process on the same CSV file. End to end = read the CSV,
match, cluster, write ``id,cluster_id`` (what ``spojka quality dedupe`` does). The engines
take turns (Spojka, Splink, Spojka, Splink, …) for ``--repeat`` rounds, so a busy shared
machine slows both alike; the report gives the median and the spread of each, the ratio of
the medians and the ratio within each round.

Cores: Spojka normalises the values on ``--workers`` processes (default: the cores there
are, at most 4; ``--workers 1`` for one process); DuckDB under Splink uses all cores by
default (its ``threads`` setting is reported). Memory: peak RSS of the worker itself, of its
largest child, and the peak of the whole process tree, sampled every 50 ms from outside (RSS
summed, which counts pages shared after a fork in each process: an upper bound).

After the first Spojka round, the incremental case: one new record matched against the
100,000 already clustered, through the blocking index (no re-clustering).

    .venv/bin/python bench/quality_speed.py [--records 100000] [--repeat 3] [--workers N]
        [--probes 300] [--skip-splink]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

COLUMNS = ["id", "name", "ico", "dic", "email", "phone", "web", "street", "city", "zip", "country"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_children_mb() -> float:
    """Peak RSS of the largest finished child process (the forked normalising workers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and its finished children (forked workers)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def worker_spojka(csv_path: Path, out: Path, workers: int | None) -> dict[str, object]:
    from spojka.quality.dedupe_csv import dedupe_file, write_clusters
    from spojka.quality.parallel import default_workers

    started = time.perf_counter()
    result, _, ids = dedupe_file(csv_path, entity="account", id_column="id", workers=workers)
    write_clusters(out, ids, result.cluster_of)
    seconds = time.perf_counter() - started
    report: dict[str, object] = {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(_cpu_seconds(), 2),
        "workers": default_workers() if workers is None else workers,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_rss_child_mb": round(_peak_rss_children_mb(), 1),
        "records": result.records,
        "pairs_compared": result.pairs_compared,
        "clusters": result.clusters,
    }
    return report


def worker_incremental(csv_path: Path, clusters: Path, probes: int) -> dict[str, object]:
    """One record at a time against the 100,000 clustered ones, through the blocking index.

    Its own process, so the end-to-end figures above hold the de-duplication alone.
    """
    from spojka.quality.clustering import DedupeResult, MatchIndex
    from spojka.quality.dedupe_csv import read_csv, read_headers
    from spojka.quality.fields import resolve_mapping
    from spojka.quality.generator import generate_companies

    mapping = resolve_mapping("account", read_headers(csv_path), id_column="id")
    _, clustered = read_csv(clusters)
    cluster_of = {row["id"]: row["cluster_id"] for row in clustered}
    result = DedupeResult(cluster_of=cluster_of, records=len(cluster_of), pairs_compared=0)
    _, rows = read_csv(csv_path)
    records = [(row["id"], {f: row.get(c) for f, c in mapping.items()}) for row in rows]
    index = MatchIndex.from_dedupe("account", records, result)
    del records
    rng = random.Random(1)
    probes_rows: list[dict[str, str | None]] = []
    for row in rng.sample(rows, probes // 2):  # changed copies of existing customers
        copy = {f: row.get(c) for f, c in mapping.items()}
        copy["name"] = (copy.get("name") or "").upper()
        copy["phone"] = ""
        probes_rows.append(copy)
    for row in generate_companies(probes - len(probes_rows), seed=99):  # new customers
        probes_rows.append({f: row.get(f if f != "domain" else "web") for f in mapping})
    latencies = []
    decisions: dict[str, int] = {}
    for n, values in enumerate(probes_rows):
        t0 = time.perf_counter()
        outcome = index.match(f"probe-{n}", values)
        latencies.append((time.perf_counter() - t0) * 1000)
        decisions[outcome.decision] = decisions.get(outcome.decision, 0) + 1
    latencies.sort()
    return {
        "incremental_ms_p50": round(statistics.median(latencies), 2),
        "incremental_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "incremental_ms_max": round(latencies[-1], 2),
        "incremental_decisions": decisions,
        "index_records": len(index),
        "index_peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def worker_splink(csv_path: Path, out: Path) -> dict[str, object]:
    import pandas as pd

    from quality_common import splink_dedupe

    started = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    rows = frame.to_dict("records")
    result = splink_dedupe("companies", rows, "id", count_pairs=False)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cluster_id"])
        for row in rows:
            writer.writerow([row["id"], result["cluster_of"].get(str(row["id"]), row["id"])])
    seconds = time.perf_counter() - started
    import duckdb

    with duckdb.connect() as con:  # what a default connection (as Splink's) may use
        row = con.execute("select current_setting('threads')").fetchone()
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(_cpu_seconds(), 2),
        "duckdb_threads": int(row[0]) if row else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_rss_child_mb": round(_peak_rss_children_mb(), 1),
        "clusters": len(set(result["cluster_of"].values())),
    }


def _tree_rss_mb(pid: int) -> float:
    """RSS summed over a process and its descendants, in MB (pages shared after a fork are
    counted in each process, so this is an upper bound of the memory the tree holds)."""
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * page_mb
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def _child(
    kind: str, csv_path: Path, out: Path, probes: int, workers: int | None
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--csv",
        str(csv_path),
        "--out",
        str(out),
        "--probes",
        str(probes),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    peak_rss = 0.0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        while p.poll() is None:
            peak_rss = max(peak_rss, _tree_rss_mb(p.pid))
            time.sleep(0.05)
        stdout, stderr = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{stderr[-3000:]}")
    report: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    report["tree_peak_rss_mb"] = round(peak_rss, 1)
    return report


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--worker", choices=["spojka", "splink", "incremental"])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker == "spojka":
        print(json.dumps(worker_spojka(args.csv, args.out, args.workers)))
        return
    if args.worker == "incremental":
        print(json.dumps(worker_incremental(args.csv, args.out, args.probes)))
        return
    if args.worker == "splink":
        print(json.dumps(worker_splink(args.csv, args.out)))
        return

    from spojka.quality.generator import generate_companies

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "companies.csv"
        rows = generate_companies(args.records, seed=8)
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        del rows
        rounds: list[dict[str, Any]] = []
        incremental: dict[str, Any] = {}
        for n in range(args.repeat):
            entry: dict[str, Any] = {"load_average_1min": round(os.getloadavg()[0], 1)}
            our_csv = Path(tmp) / "spojka.csv"
            entry["spojka"] = _child("spojka", csv_path, our_csv, args.probes, args.workers)
            print(f"round {n + 1} spojka: {entry['spojka']}", file=sys.stderr, flush=True)
            if n == 0 and args.probes:  # the incremental case once, on Spojka's clusters
                incremental = _child("incremental", csv_path, our_csv, args.probes, None)
                print(f"incremental: {incremental}", file=sys.stderr, flush=True)
            if not args.skip_splink:
                entry["splink"] = _child("splink", csv_path, Path(tmp) / "splink.csv", 0, None)
                print(f"round {n + 1} splink: {entry['splink']}", file=sys.stderr, flush=True)
                entry["speedup"] = round(entry["splink"]["seconds"] / entry["spojka"]["seconds"], 2)
            rounds.append(entry)

    ours = [r["spojka"] for r in rounds]
    report: dict[str, Any] = {
        "records": args.records,
        "rounds": len(rounds),
        "spojka": {
            "seconds": _spread([r["seconds"] for r in ours]),
            "cpu_seconds": _spread([r["cpu_seconds"] for r in ours]),
            "workers": ours[0]["workers"],
            "tree_peak_rss_mb": max(r["tree_peak_rss_mb"] for r in ours),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in ours),
            "peak_rss_child_mb": max(r["peak_rss_child_mb"] for r in ours),
            "pairs_compared": ours[0]["pairs_compared"],
            "clusters": ours[0]["clusters"],
        },
        "incremental": {
            k: v for k, v in incremental.items() if k.startswith(("incremental", "index"))
        },
        "load_average_1min": [r["load_average_1min"] for r in rounds],
    }
    if not args.skip_splink:
        theirs = [r["splink"] for r in rounds]
        report["splink"] = {
            "seconds": _spread([r["seconds"] for r in theirs]),
            "cpu_seconds": _spread([r["cpu_seconds"] for r in theirs]),
            "duckdb_threads": theirs[0]["duckdb_threads"],
            "tree_peak_rss_mb": max(r["tree_peak_rss_mb"] for r in theirs),
            "clusters": theirs[0]["clusters"],
        }
        report["speedup_vs_splink"] = round(
            report["splink"]["seconds"]["median"] / report["spojka"]["seconds"]["median"], 2
        )
        report["speedup_per_round"] = [r["speedup"] for r in rounds]
        report["cpu_ratio_vs_splink"] = round(
            report["splink"]["cpu_seconds"]["median"] / report["spojka"]["cpu_seconds"]["median"],
            2,
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
