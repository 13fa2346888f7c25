"""Speed: 100,000 company records de-duplicated end to end, Spojka vs Splink 5, same run.

Each engine runs in its own child process on the same CSV file, so its peak RSS is its own.
End to end = read the CSV, match, cluster, write ``id,cluster_id`` (what ``spojka quality
dedupe`` does). Then the incremental case: one new record matched against the 100,000
already clustered, through the blocking index (no re-clustering).

    .venv/bin/python bench/quality_speed.py [--records 100000] [--probes 300] [--skip-splink]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

COLUMNS = ["id", "name", "ico", "dic", "email", "phone", "web", "street", "city", "zip", "country"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: comparable even when the machine is busy."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_spojka(csv_path: Path, out: Path, probes: int) -> dict[str, object]:
    from spojka.quality.clustering import MatchIndex
    from spojka.quality.dedupe_csv import dedupe_file, read_csv, write_clusters
    from spojka.quality.generator import generate_companies

    started = time.perf_counter()
    result, mapping, ids = dedupe_file(csv_path, entity="account", id_column="id")
    write_clusters(out, ids, result.cluster_of)
    seconds = time.perf_counter() - started
    rss = _peak_rss_mb()
    cpu = _cpu_seconds()

    # incremental: index the clustered records, then match records one at a time
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
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(rss, 1),
        "records": result.records,
        "pairs_compared": result.pairs_compared,
        "clusters": result.clusters,
        "incremental_ms_p50": round(statistics.median(latencies), 2),
        "incremental_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "incremental_ms_max": round(latencies[-1], 2),
        "incremental_decisions": decisions,
        "index_records": len(index),
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
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(_cpu_seconds(), 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "clusters": len(set(result["cluster_of"].values())),
    }


def _child(kind: str, csv_path: Path, out: Path, probes: int) -> dict[str, object]:
    done = subprocess.run(
        [
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
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--worker", choices=["spojka", "splink"])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker == "spojka":
        print(json.dumps(worker_spojka(args.csv, args.out, args.probes)))
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
        report: dict[str, object] = {"records": args.records}
        report["spojka"] = _child("spojka", csv_path, Path(tmp) / "spojka.csv", args.probes)
        print(f"spojka: {report['spojka']}", file=sys.stderr, flush=True)
        if not args.skip_splink:
            report["splink"] = _child("splink", csv_path, Path(tmp) / "splink.csv", args.probes)
            print(f"splink: {report['splink']}", file=sys.stderr, flush=True)
            ours, theirs = report["spojka"], report["splink"]
            report["speedup_vs_splink"] = round(
                float(theirs["seconds"]) / float(ours["seconds"]),  # type: ignore[index]
                2,
            )
            report["cpu_ratio_vs_splink"] = round(
                float(theirs["cpu_seconds"]) / float(ours["cpu_seconds"]),  # type: ignore[index]
                2,
            )
        report["load_average_1min"] = round(os.getloadavg()[0], 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
