"""The whole accounts-payable flow per hour on SQLite: intake → posted in a real Tryton.

    .venv/bin/python bench/documents_flow.py [--docs 16] [--baseline 8]

Each document is an ISDOC supplier invoice matching a confirmed Tryton purchase order of its
own supplier (≤ 20,000 Kč, so the matrix approves it automatically). Timed: storing it
(``take_in``: content hash, reading, checks), the durable ``documents.ap_intake`` run on the
in-process worker (read → checks → match against Tryton → post), until every run finished.

Baseline, measured in the same run against the same Tryton: the same Tryton work done
directly and sequentially (supplier lookup, open purchases, match, create + post the supplier
invoice) without Spojka's storage, run records, durable steps or audit. The time spent inside
Tryton calls during the flow phase is measured too (summed over the worker threads), so the
split between Tryton and Spojka's own time is visible. One JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import documents_testdata

LINES = [("Konzultace", 2, "1500.00"), ("Školení uživatelů", 1, "1200.00")]


class TrytonTimer:
    """Sums the wall time of every HTTP call to Tryton (all threads)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.enabled = False
        self._lock = threading.Lock()

    def install(self) -> None:
        from spojka.connectors.tryton.client import TrytonClient

        original = TrytonClient._post
        timer = self

        def timed(client: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(client, *args, **kwargs)
            finally:
                if timer.enabled:
                    with timer._lock:
                        timer.seconds += time.perf_counter() - started
                        timer.calls += 1

        TrytonClient._post = timed  # type: ignore[method-assign]


def supplier_with_order(gen: Any, erp: Any, seed: int) -> Any:
    from spojka.documents.posting import create_supplier_with_order

    supplier = gen.company(random.Random(seed), "CZ")
    create_supplier_with_order(
        erp,
        name=f"{supplier.name} {seed}",
        ico=supplier.ico,
        dic=supplier.dic,
        street=supplier.street,
        city=supplier.city,
        lines=LINES,
    )
    return supplier


def isdoc(gen: Any, supplier: Any, number: str, folder: Path) -> Path:
    path = folder / f"{number}.isdoc"
    path.write_bytes(gen.isdoc_xml(gen.invoice_for_order(supplier, number, LINES)))
    return path


def direct_post(erp: Any, path: Path, key: str) -> None:
    """The baseline: the same Tryton work without Spojka around it."""
    from spojka.documents import matching
    from spojka.documents.posting import TrytonPayables
    from spojka.documents.reader import extract_file

    ex = extract_file(path)
    invoice = ex.invoice
    payables = TrytonPayables(erp)
    party = payables.supplier(ico=invoice.supplier.ico, dic=invoice.supplier.dic)
    assert party is not None
    orders = payables.purchases(
        party=party, supplier_ico=invoice.supplier.ico, supplier_dic=invoice.supplier.dic
    )
    order = matching.find_order(invoice, orders)
    result = matching.match(invoice, order, matching.Tolerances().default, three_way=True)
    assert result.status == "matched", result
    pairs = result.as_dict()["pairs"]
    invoice_id = payables.create_supplier_invoice(
        key=key,
        party=party,
        invoice=ex.to_output(),
        pairs={int(k): int(v) for k, v in pairs.items()},
        purchase_number=order.number if order else None,
    )
    payables.post(invoice_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=16, help="documents through the whole flow")
    parser.add_argument("--baseline", type=int, default=8, help="documents posted directly")
    args = parser.parse_args()

    from spojka.bootstrap import bootstrap, reset
    from spojka.connectors.tryton.client import TrytonClient
    from spojka.core.logging import configure_logging
    from spojka.core.settings import load_settings
    from spojka.documents.intake import take_in
    from spojka.flows import local, systems
    from spojka.localsystems import tryton
    from spojka.runtime import engine
    from spojka.runtime.models import FlowRun

    configure_logging("warning", "json")
    gen = documents_testdata("generate")
    timer = TrytonTimer()
    timer.install()
    server = tryton.start()
    with tempfile.TemporaryDirectory(prefix="bench-ap-") as tmp:
        folder = Path(tmp)
        settings = load_settings(
            data_dir=folder / "data",
            database_url=f"sqlite:///{folder / 'spojka.sqlite'}",
            log_level="warning",
        )
        app = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
        erp = TrytonClient(server.url, server.database, server.user, server.password)
        try:
            local.configure_tryton(app, server)
            # Setup (not timed): one supplier with a confirmed purchase order per document.
            started = time.perf_counter()
            total = args.docs + args.baseline
            files = [
                isdoc(gen, supplier_with_order(gen, erp, 1000 + i), f"FB{i:05d}", folder)
                for i in range(total)
            ]
            setup_s = time.perf_counter() - started

            # Baseline: the Tryton work alone, sequentially.
            timer.enabled = True
            started = time.perf_counter()
            for i, path in enumerate(files[args.docs :]):
                direct_post(erp, path, f"bench-direct:{i}")
            baseline_s = time.perf_counter() - started
            baseline_tryton_s, baseline_calls = timer.seconds, timer.calls
            timer.seconds, timer.calls = 0.0, 0

            # The whole flow: intake → durable run → posted, on the in-process worker.
            engine.launch(settings)
            started = time.perf_counter()
            intake_started = time.perf_counter()
            runs = [take_in(app, path, actor="bench").workflow_id for path in files[: args.docs]]
            intake_s = time.perf_counter() - intake_started
            outcomes = [engine.wait_result(settings, wid, timeout=600)["outcome"] for wid in runs]
            flow_s = time.perf_counter() - started
            timer.enabled = False
            with app.sessions() as session:
                latencies = [
                    session.get(FlowRun, wid).latency_ms / 1000  # type: ignore[union-attr]
                    for wid in runs
                ]
        finally:
            engine.shutdown()
            systems.reset_clients()
            erp.close()
            reset()
            server.stop()

    flow_tryton_s = timer.seconds
    run_seconds = sum(latencies)
    result = {
        "benchmark": "documents_flow",
        "database": "sqlite",
        "docs": args.docs,
        "posted_automatically": outcomes.count("automated"),
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
        "setup_seconds": round(setup_s, 1),
        "flow_wall_seconds": round(flow_s, 2),
        "intake_seconds": round(intake_s, 2),
        "flow_docs_per_hour": round(args.docs / flow_s * 3600),
        "run_latency_p50_s": round(statistics.median(latencies), 2),
        "run_latency_max_s": round(max(latencies), 2),
        "tryton_calls_in_flow": timer.calls,
        "tryton_seconds_in_flow": round(flow_tryton_s, 2),
        "tryton_share_of_run_time": round(flow_tryton_s / run_seconds, 2) if run_seconds else None,
        "spojka_own_seconds_per_doc": round((run_seconds - flow_tryton_s) / args.docs, 3),
        "baseline_docs": args.baseline,
        "baseline_direct_docs_per_hour": round(args.baseline / baseline_s * 3600),
        "baseline_seconds_per_doc": round(baseline_s / args.baseline, 3),
        "baseline_tryton_seconds_per_doc": round(baseline_tryton_s / args.baseline, 3),
        "baseline_tryton_calls_per_doc": round(baseline_calls / args.baseline, 1),
        "relative_to_baseline": round((args.docs / flow_s) / (args.baseline / baseline_s), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
