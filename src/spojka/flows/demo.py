"""The demo chapter of the quote-to-cash flows, told on real local systems.

Starts BottleCRM, Tryton, Redmine and a mail server from their golden snapshots (about
30 s; the very first run installs them, which takes several minutes), wins two deals in
BottleCRM — one complete, one missing data — and follows them through the handoff, then
invoices a closed milestone after an approval.
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any

from spojka.core.errors import SpojkaError
from spojka.flows import billing, customer360, handoff, local, payments, service, tickets
from spojka.runtime import engine, runs
from spojka.runtime.flows import signal_decision


def _pending(app: Any, workflow_id: str, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == workflow_id:
                    return int(decision.id)
        time.sleep(0.2)
    raise SpojkaError(f"{workflow_id} did not ask for a decision within {timeout:.0f}s")


def _queued(app: Any, workflow_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            engine.status(app.settings, workflow_id)
            return
        except Exception:
            time.sleep(0.2)
    raise SpojkaError(f"the webhook for {workflow_id} did not arrive within {timeout:.0f}s")


def handoff_chapter(ctx: Any) -> None:
    """Won deals in BottleCRM become Redmine projects and Tryton orders; a milestone is billed."""
    app, say = ctx.app, ctx.console.print
    say("  starting BottleCRM, Tryton, Redmine and mail (first run installs them: minutes) …")
    with local.local_stack(app) as stack:
        say(f"  systems ready in {stack.timings['systems_start_s']} s; Spojka API {stack.api_url}")
        crm = stack.crm_client()
        tag = secrets.token_hex(2)
        good = local.czech_deal(crm, suffix=tag)
        incomplete = local.czech_deal(
            crm,
            suffix=tag + "b",
            ico="27082441",
            with_contact=False,
            name="Školení účetních – Tatra",
        )
        for deal in (good, incomplete):
            local.win(crm, deal)
        say("  two deals won in BottleCRM; their signed deal.won webhooks reach Spojka")
        wid = handoff.workflow_id("bottlecrm", good)
        _queued(app, wid)
        result = engine.wait_result(app.settings, wid, timeout=180)
        say(
            f"  ✔ {result['deal']}: project {result['project_url']}, order "
            f"{result['sale_number']} in Tryton, note on the deal, e-mail to PM and owner — "
            f"won → ready in {result['lead_time_s']:.1f} s"
        )
        bad = handoff.workflow_id("bottlecrm", incomplete)
        _queued(app, bad)
        decision = _pending(app, bad)
        with app.sessions() as session:
            summary = runs.get_decision(session, decision).summary
        say("  ✖ the second deal waits; its owner got a task in BottleCRM:")
        for line in summary.splitlines()[1:]:
            say(f"      {line}")
        signal_decision(
            decision_id=decision,
            decision="reject",
            actor="obchodnik",
            role="approver",
            reason="zákazník dodá údaje příští týden",
        )
        with stack.redmine_client() as pm:
            project = pm.get(f"/projects/{result['project']}.json")["project"]
            first = pm.get(f"/projects/{project['id']}/versions.json")["versions"][0]
            pm.put(f"/versions/{first['id']}.json", {"version": {"status": "closed"}})
        say(f"  milestone '{first['name']}' closed in Redmine → invoice draft in Tryton")
        (bill,) = [w for w in billing.poll_milestones() if w == billing.workflow_id(first["id"])]
        signal_decision(
            decision_id=_pending(app, bill),
            decision="approve",
            actor="ucetni",
            role="approver",
            minutes_spent=2,
        )
        invoice = engine.wait_result(app.settings, bill, timeout=120)
        say(
            f"  ✔ invoice {invoice['number']} posted: {invoice['total']} {invoice['currency']} "
            f"incl. DPH, due {invoice['due_date']}; number and amount noted on the deal"
        )
        with stack.tryton_client() as erp:
            local.pay_invoice(erp, int(invoice["invoice"]), Decimal("50000"))
        for wid in payments.poll_payments():
            engine.wait_result(app.settings, wid, timeout=60)
        say(
            f"  ✔ 50 000 {invoice['currency']} paid in Tryton → "
            f"'{invoice['number']} partly paid' on the deal and the project"
        )
        with stack.redmine_client() as pm:
            support = pm.get("/trackers.json")["trackers"]
            ticket = pm.create_issue(
                {
                    "project_id": project["id"],
                    "tracker_id": next(t["id"] for t in support if t["name"] == "Support"),
                    "subject": "Faktury se netisknou",
                }
            )
        for wid in tickets.poll_tickets():
            engine.wait_result(app.settings, wid, timeout=60)
        view = customer360.build("25596641")  # the demo customer's IČO
        risk = next((t for t in view.tickets if t.id == ticket["id"]), None)
        say(
            f"  ✔ support ticket #{ticket['id']} → task on the BottleCRM account "
            f"(SLA {risk.sla_kind} by {risk.sla_deadline}, {risk.risk})"
            if risk
            else f"  support ticket #{ticket['id']} created"
        )
        receivable = ", ".join(
            f"{r.due} {r.currency} due, DSO {'–' if r.dso_days is None else r.dso_days} d"
            for r in view.receivables
        )
        say(
            f"  Customer 360 of {view.account.name}: {len(view.deals)} open deals, "
            f"{len(view.projects)} project(s), {len(view.tickets)} open ticket(s), "
            f"{len(view.invoices)} invoice(s); {receivable or 'nothing due'} "
            "(spojka account show 25596641)"
        )
        forecast = service.capacity_forecast(weeks=12)
        say(
            f"  capacity, next 12 weeks: {forecast['sources']} demand sources, "
            f"{forecast['over_allocated']} over-allocated role-weeks (spojka capacity)"
        )
        ctx.facts["handoff"] = result
        ctx.facts["invoice"] = invoice
    for row in service.kpis():
        if row["runs"]:
            median = "–" if row["median_s"] is None else f"{row['median_s']:.1f} s"
            share = "–" if row["without_human"] is None else f"{row['without_human']:.0%}"
            say(
                f"  KPI {row['flow']}: {row['finished']} finished, median {row['time_metric']} "
                f"{median}, without a person {share}"
            )
