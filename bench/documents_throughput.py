"""Throughput of reading supplier invoices on one core.

    .venv/bin/python bench/documents_throughput.py [--pdfs 60] [--scans 4]

Text PDFs extracted + checked per second, against a baseline measured in the same run: the
raw pdfplumber text extraction of the same files (no layout rules, no checks). OCR pages per
second on noisy scans. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one core: Tesseract too

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import documents_testdata


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdfs", type=int, default=60)
    parser.add_argument("--scans", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the PDFs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # really one core, whatever else the machine runs
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    import pdfplumber

    from spojka.documents.checks import run_checks
    from spojka.documents.ocr_setup import ensure_document_tools
    from spojka.documents.reader import extract_file

    ensure_document_tools()
    gen = documents_testdata("generate")
    rng = random.Random(31337)
    layouts = list(gen.DEV_LAYOUTS | gen.HELDOUT_LAYOUTS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pdfs = []
        for i in range(args.pdfs):
            doc = gen.make_doc(rng, gen.LANGS[i % 4])
            path = folder / f"t{i:03d}.pdf"
            path.write_bytes(gen.render_pdf(doc, layouts[i % len(layouts)], rng))
            pdfs.append(path)
        scans = []
        for i in range(args.scans):
            doc = gen.make_doc(rng, gen.LANGS[i % 4])
            path = folder / f"s{i:03d}.png"
            path.write_bytes(gen.scan_image(gen.render_pdf(doc, layouts[i % 3], rng), rng))
            scans.append(path)

        extract_file(pdfs[0])  # warm imports
        best_rules = best_raw = float("inf")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for path in pdfs:
                with pdfplumber.open(path) as pdf:
                    for page in pdf.pages:
                        page.extract_text()
            best_raw = min(best_raw, time.perf_counter() - t0)
            t0 = time.perf_counter()
            failures = 0
            for path in pdfs:
                failures += len(run_checks(extract_file(path).invoice))
            best_rules = min(best_rules, time.perf_counter() - t0)

        t0 = time.perf_counter()
        for path in scans:
            extract_file(path)
        ocr_seconds = time.perf_counter() - t0

    result = {
        "benchmark": "documents_throughput",
        "cores": 1,
        "text_pdfs": args.pdfs,
        "text_pdfs_per_s_extracted_and_checked": round(args.pdfs / best_rules, 1),
        "baseline_raw_pdfplumber_text_pdfs_per_s": round(args.pdfs / best_raw, 1),
        "relative_to_baseline": round(best_raw / best_rules, 2),
        "check_failures_on_clean_documents": failures,
        "ocr_pages": args.scans,
        "ocr_pages_per_s": round(args.scans / ocr_seconds, 2) if args.scans else None,
        "ocr_seconds_per_page": round(ocr_seconds / args.scans, 2) if args.scans else None,
        "target_text_pdfs_per_s": 20,
        "meets_target": args.pdfs / best_rules >= 20,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
