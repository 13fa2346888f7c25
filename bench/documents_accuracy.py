"""Field accuracy of reading supplier invoices, per path (XML, text PDF, OCR) and split.

    .venv/bin/python bench/documents_accuracy.py [--count 40] [--scans 6] [--workers 2]

Generates the labelled set (tests/data/documents/generate.py): a ``dev`` split (layouts the
rules were developed on) and a ``heldout`` split (other seeds and two layouts dev never has),
each with ISDOC, UBL, Factur-X, text PDFs in cs/sk/en/de and noisy scans. Reports per-field
accuracy, header-field accuracy and the exact-document rate for each path, and a baseline
measured in the same run: a layout-blind reader that takes the first date / IBAN / number after
each keyword in the plain text and the largest amount as the total. Prints one JSON object on
the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import documents_testdata

PATHS = {"isdoc": "xml", "ubl": "xml", "facturx": "xml", "text": "text", "scan": "ocr"}


def _baseline(text: str) -> dict[str, Any]:
    """Layout-blind: first match after a keyword anywhere in the plain text."""
    from spojka.documents.parsing import find_amounts, find_iban, fold, parse_date

    folded = fold(text)
    dates = [
        d for d in (parse_date(m.group(0)) for m in re.finditer(r"\S+\s?\S*\s?\d{4}", text)) if d
    ]
    amounts = [a for a, _, _ in find_amounts(text)]
    number = re.search(
        r"(?:c\.|no\.|nummer|nr\.|cislo faktury)\s*:?\s*([a-z0-9/-]*\d[a-z0-9/-]*)", folded
    )
    ico = re.findall(r"\bic[o]?\s*:?\s*(\d{8})", folded)
    return {
        "number": number.group(1).upper() if number else None,
        "issue_date": dates[0].isoformat() if dates else None,
        "tax_point_date": dates[1].isoformat() if len(dates) > 1 else None,
        "due_date": dates[2].isoformat() if len(dates) > 2 else None,
        "iban": find_iban(text),
        "supplier": {"ico": ico[0] if ico else None},
        "customer": {"ico": ico[1] if len(ico) > 1 else None},
        "total_with_vat": float(max(amounts)) if amounts else None,
        "amount_due": float(max(amounts)) if amounts else None,
        "lines": [],
        "vat_breakdown": [],
    }


def _one(path_str: str) -> dict[str, Any]:
    from spojka.documents.models import Extraction
    from spojka.documents.reader import extract_file, read_layout
    from spojka.documents.rules import extract_from_layout

    path = Path(path_str)
    want = json.loads(path.with_name(path.name + ".expected.json").read_text())
    kind = want["_meta"]["kind"]
    score = documents_testdata("score")
    baseline = None
    try:
        if kind in ("text", "scan"):
            # the same steps as extract_file, with the page layout kept for the baseline
            layout = read_layout(path)
            assert layout is not None
            invoice = extract_from_layout(layout)
            got = Extraction(file=str(path), source=layout.source, invoice=invoice).to_output()  # type: ignore[arg-type]
            baseline = score.compare(_baseline(layout.text), want)
        else:
            got = extract_file(path).to_output()
        error = None
    except Exception as exc:  # counted as all-wrong, reported
        got, error = {}, f"{type(exc).__name__}: {exc}"
    result = {
        "file": path.name,
        "kind": kind,
        "split": want["_meta"]["split"],
        "fields": score.compare(got, want)
        if got
        else {k: False for k in score.HEADER + score.TABLES},
        "error": error,
    }
    if baseline is not None:
        result["baseline"] = baseline
    return result


def _summary(rows: list[dict[str, Any]], header: list[str]) -> dict[str, Any]:
    per_field: dict[str, list[bool]] = defaultdict(list)
    exact = header_exact = 0
    for row in rows:
        for field, ok in row["fields"].items():
            per_field[field].append(ok)
        exact += all(row["fields"].values())
        header_exact += all(row["fields"][f] for f in header)
    head = [ok for f in header for ok in per_field.get(f, [])]
    out: dict[str, Any] = {
        "documents": len(rows),
        "header_field_accuracy": round(sum(head) / len(head), 4) if head else None,
        "all_field_accuracy": round(
            sum(ok for v in per_field.values() for ok in v)
            / max(1, sum(len(v) for v in per_field.values())),
            4,
        ),
        "exact_document_rate": round(exact / len(rows), 4) if rows else None,
        "header_exact_document_rate": round(header_exact / len(rows), 4) if rows else None,
        "per_field": {f: round(sum(v) / len(v), 3) for f, v in sorted(per_field.items()) if v},
    }
    base = [ok for row in rows if "baseline" in row for f in header for ok in [row["baseline"][f]]]
    if base:
        out["baseline_header_field_accuracy"] = round(sum(base) / len(base), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40, help="documents per split")
    parser.add_argument("--scans", type=int, default=6, help="scans per split")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--details", action="store_true", help="print every wrong field")
    args = parser.parse_args()

    from spojka.documents.ocr_setup import ensure_document_tools

    ensure_document_tools()
    gen = documents_testdata("generate")
    score = documents_testdata("score")
    with tempfile.TemporaryDirectory() as tmp:
        files: list[Path] = []
        for split in ("dev", "heldout"):
            files += gen.generate(
                Path(tmp) / split, split=split, count=args.count, scans=args.scans
            )
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            rows = list(pool.map(_one, [str(p) for p in files]))
    if args.details:
        for row in rows:
            wrong = [f for f, ok in row["fields"].items() if not ok]
            if wrong or row["error"]:
                print(row["file"], wrong, row["error"] or "", file=sys.stderr)
    result: dict[str, Any] = {"benchmark": "documents_accuracy", "documents": len(rows)}
    for path_name in ("xml", "text", "ocr"):
        chosen = [r for r in rows if PATHS[r["kind"]] == path_name]
        result[path_name] = {
            "all": _summary(chosen, score.HEADER),
            "dev": _summary([r for r in chosen if r["split"] == "dev"], score.HEADER),
            "heldout": _summary([r for r in chosen if r["split"] == "heldout"], score.HEADER),
        }
    result["errors"] = [f"{r['file']}: {r['error']}" for r in rows if r["error"]]
    result["targets"] = {
        "xml_all_fields_100pct": result["xml"]["all"]["all_field_accuracy"] == 1.0,
        "text_header_ge_95pct": (result["text"]["all"]["header_field_accuracy"] or 0) >= 0.95,
        "ocr_header_ge_85pct": (result["ocr"]["all"]["header_field_accuracy"] or 0) >= 0.85,
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
