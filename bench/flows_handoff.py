"""Handoffs per minute end to end, and the share of time spent in Spojka vs. the systems.

Starts BottleCRM, Tryton, Redmine and a mail server (golden snapshots; the first run installs
them), wins N deals in BottleCRM at once and waits until every handoff has finished: webhook →
durable queue → pre-flight → Redmine project → Tryton customer and order → links → note → mail.

Time inside the external systems is every HTTP call the flow worker makes to them (and the
SMTP delivery), measured around ``httpx.Client.send`` and the SMTP sender in this process.
Spojka's share = 1 − external / total handoff time (run records).

Baseline, measured in the same run: the same writes made directly, one deal after another,
with the same adapters but without webhook, queue, durable steps, run records or audit.

    .venv/bin/python bench/flows_handoff.py [--deals 8]
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from spojka.bootstrap import bootstrap, reset
from spojka.connectors.mail import smtp
from spojka.core.settings import load_settings
from spojka.flows import handoff, local, rules, systems
from spojka.runtime import engine, runs

_external: dict[int, float] = defaultdict(float)
_ignore: set[int] = set()
_lock = threading.Lock()


def _instrument() -> None:
    """Count the time each thread spends waiting on the external systems."""
    original_send = httpx.Client.send
    original_deliver = smtp.SmtpSender._deliver

    def timed_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        try:
            return original_send(self, request, **kwargs)
        finally:
            ident = threading.get_ident()
            if ident not in _ignore:
                with _lock:
                    _external[ident] += time.perf_counter() - started

    def timed_deliver(self: smtp.SmtpSender, msg: Any, recipients: list[str]) -> Any:
        started = time.perf_counter()
        try:
            return original_deliver(self, msg, recipients)
        finally:
            with _lock:
                _external[threading.get_ident()] += time.perf_counter() - started

    httpx.Client.send = timed_send  # type: ignore[method-assign]
    smtp.SmtpSender._deliver = timed_deliver  # type: ignore[method-assign]


def _wait_queued(settings: Any, wid: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            engine.status(settings, wid)
            return
        except Exception:
            time.sleep(0.05)
    raise TimeoutError(f"{wid} was never queued (webhook lost?)")


def _baseline(stack: local.LocalStack, deals: list[str]) -> float:
    """The same writes, directly and sequentially: no webhook, queue, durable steps or audit."""
    cfg = systems.config()
    started = time.perf_counter()
    for deal_id in deals:
        side = systems.crm(cfg, "bottlecrm")
        deal = side.fetch_deal(deal_id)
        deal.id = deal.id + "-direct"  # a different project identifier and order marker
        template = rules.choose_template(deal, cfg)
        plan = rules.plan_project(deal, template, cfg)
        project = systems.RedminePm(systems.redmine(cfg)).ensure_project(
            plan, pm_login=cfg.people.pm_redmine_login, manager_role="Manager", key=deal.key
        )
        erp = systems.TrytonErp(systems.tryton(cfg))
        party = erp.ensure_party(deal, deal.key)
        sale = erp.ensure_sale(deal, party, plan, cfg.templates[template].product, deal.key)
        side.add_note(deal_id, f"direct: {project['url']} {sale['id']}", f"{deal.key}:direct")
        systems.notify(
            cfg,
            key=f"{deal.key}:direct-mail",
            to=[cfg.people.pm_email],
            subject=plan.name,
            text="direct",
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-flows-"))
    settings = load_settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'spojka.sqlite'}",
        log_level="warning",
    )
    app = bootstrap(settings, migrate=True, create_key=True, configure_logs=True)
    _instrument()
    _ignore.add(threading.get_ident())  # the bench's own calls (making deals) do not count
    with local.local_stack(app) as stack:
        crm = stack.crm_client()
        tag = secrets.token_hex(2)
        icos = [
            "25596641",
            "27082440",
            "45274649",
            "00006947",
            "49240030",
            "26185610",
            "47114983",
            "60193336",
        ]
        deal_ids = [
            local.czech_deal(
                crm, suffix=f"{tag}{i}", ico=icos[i % len(icos)], dic=f"CZ{icos[i % len(icos)]}"
            )
            for i in range(args.deals)
        ]
        started = time.perf_counter()
        for deal_id in deal_ids:
            local.win(crm, deal_id)
        workflows = [handoff.workflow_id("bottlecrm", d) for d in deal_ids]
        results = []
        for wid in workflows:
            _wait_queued(settings, wid)
            results.append(engine.wait_result(settings, wid, timeout=600))
        elapsed = time.perf_counter() - started
        outcomes = sorted({r["outcome"] for r in results})
        with app.sessions() as session:
            records = [r for r in runs.list_runs(session, flow=handoff.FLOW, limit=1000)]
        run_seconds = sum((r.latency_ms or 0) / 1000 for r in records)
        external = sum(_external.values())
        lead = sorted(r["lead_time_s"] for r in results if r.get("lead_time_s") is not None)
        # Baseline: fresh deals (the handoff's own deals already have their projects).
        base_deals = [
            local.czech_deal(
                crm, suffix=f"{tag}d{i}", ico=icos[i % len(icos)], dic=f"CZ{icos[i % len(icos)]}"
            )
            for i in range(args.deals)
        ]
        _ignore.discard(threading.get_ident())
        baseline_s = _baseline(stack, base_deals)
        figures = {
            "deals": args.deals,
            "outcomes": outcomes,
            "errors": sorted({str(r.get("error"))[:160] for r in results if r.get("error")}),
            "handoffs_per_min": round(args.deals / elapsed * 60, 2),
            "wall_s": round(elapsed, 1),
            "lead_time_median_s": round(lead[len(lead) // 2], 2) if lead else None,
            "lead_time_max_s": round(lead[-1], 2) if lead else None,
            "run_time_total_s": round(run_seconds, 1),
            "external_time_s": round(external, 1),
            "spojka_share": round(max(0.0, 1 - external / run_seconds), 3) if run_seconds else None,
            "baseline_direct_sequential_per_min": round(args.deals / baseline_s * 60, 2),
            "baseline_direct_s_per_deal": round(baseline_s / args.deals, 2),
            "systems_start_s": stack.timings.get("systems_start_s"),
        }
    reset()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
