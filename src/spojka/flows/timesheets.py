"""Time & material billing: a month's Redmine time entries → an invoice draft in Tryton with a
line per activity (hours × the activity's rate, VAT by the product) → an approver releases it →
posted; the entries are marked billed in Redmine, and number, amount and due date reach the deal
and the project.

Redmine 5 has no approval state for time entries: a month's entries count as approved once the
month is over, and the person who releases the invoice sees them summed per activity. Which
projects are billed this way says their template (``billing: time_and_material``).
:func:`poll_timesheets` queues ``flows.timesheet_billing`` once per project and month
(``tm:redmine:<project id>:<YYYY-MM>``); it bills every unbilled entry up to that month's end,
so an entry logged late is billed with the next month.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from spojka.bootstrap import current
from spojka.core.errors import PermanentError
from spojka.flows import billing, links, rules, systems
from spojka.flows.handoff import Envelope, _audit, clock, guarded, retrying
from spojka.runtime import FlowResult, Outcome, flow, step

FLOW = "flows.timesheet_billing"


def workflow_id(project_id: int | str, period: str) -> str:
    return f"tm:redmine:{project_id}:{period}"


def _period_end(period: str) -> dt.date:
    return rules.month_end(dt.date.fromisoformat(f"{period}-01"))


@step(name="tm.draft")
def draft(project_id: str, period: str, entries: list[dict[str, Any]]) -> Envelope:
    """The invoice draft: one line per activity, hours × rate, taxed by the product."""
    cfg = systems.config()

    def run() -> dict[str, Any]:
        linked = billing._engagement(project_id)
        project = systems.RedminePm(systems.redmine(cfg)).project(project_id) or {}
        template = cfg.templates[rules.template_of_project(project.get("description"), cfg)]
        lines = rules.time_lines(entries, rates=template.rates, default_rate=template.hourly_rate)
        if not lines:
            raise PermanentError(f"no billable hours in project {project_id} up to {period}")
        erp, sale = billing._sale_to_invoice(cfg, linked)
        invoice_id = erp.invoice_draft_lines(
            party=sale["party"],
            currency=sale["currency"],
            product=int(sale["product"]),
            lines=[
                (ln.hours, ln.rate, f"{ln.activity}: {ln.hours} h × {ln.rate} {sale['currency']}")
                for ln in lines
            ],
            text=f"Práce za {period} (čas a materiál) – objednávka {sale['number']}",
            sale_number=sale["number"],
            key=f"tm:{project_id}:{period}",
        )
        invoice = erp.invoice(invoice_id)
        hours = sum((ln.hours for ln in lines), Decimal(0))
        _audit(
            "billing.tm_draft",
            "tryton_invoice",
            str(invoice_id),
            {"project": project_id, "period": period, "hours": str(hours)},
        )
        return {
            "invoice": invoice,
            "lines": [ln.to_dict() for ln in lines],
            "hours": str(hours),
            "project_name": project.get("name") or project_id,
            "deal": {k: v for k, v in linked.items() if k.endswith("/opportunity")},
        }

    return guarded(run)


@step(name="tm.mark_billed")
def mark_billed(entry_ids: list[int], number: str) -> Envelope:
    cfg = systems.config()

    def run() -> int:
        systems.RedminePm(systems.redmine(cfg)).mark_billed(entry_ids, f"faktura {number}")
        return len(entry_ids)

    return guarded(run)


@flow(FLOW, subject_arg="subject")
def timesheet_billing(
    project_id: str, period: str, entries: list[dict[str, Any]], subject: str = ""
) -> FlowResult:
    """Invoice a project's unbilled time up to the end of ``period`` (YYYY-MM)."""
    drafted = retrying(draft, project_id, period, entries)
    if not drafted["ok"]:
        return FlowResult(Outcome.failed, detail={"error": drafted["error"], "stage": "draft"})
    value = drafted["value"]
    invoice = value["invoice"]
    lines = "\n".join(
        f"- {ln['activity']}: {ln['hours']} h × {ln['rate']} = {ln['amount']}"
        for ln in value["lines"]
    )
    released = billing.release_and_post(
        invoice,
        subject=f"Výkazy {period}: {value['project_name']}",
        summary=f"Návrh faktury {invoice['total']} {invoice['currency']} s DPH za "
        f"{value['hours']} h ({len(entries)} výkazů) čeká na schválení:\n{lines}",
    )
    if isinstance(released, FlowResult):
        return released
    final, human = released
    marked = retrying(mark_billed, [int(e["id"]) for e in entries], str(final["number"]))
    wrote = retrying(
        billing.write_back, value["deal"], final, f"práci {period} ({value['hours']} h)", project_id
    )
    issued_at = clock()
    billable_from = dt.datetime.combine(
        _period_end(period) + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
    ).timestamp()
    return FlowResult(
        Outcome.approved if human else Outcome.automated,
        detail={
            "project": project_id,
            "period": period,
            "hours": value["hours"],
            "lines": value["lines"],
            "invoice": final["id"],
            "number": final["number"],
            "total": final["total"],
            "untaxed": final["untaxed"],
            "currency": final["currency"],
            "due_date": final["due_date"],
            "time_to_invoice_s": max(0.0, issued_at - billable_from),
            "entries_marked": marked["ok"],
            "written_back": wrote["ok"],
        },
    )


def poll_timesheets() -> list[str]:
    """Queue billing of last month's unbilled time for every time & material project."""
    from spojka.runtime import engine

    app = current()
    cfg = systems.config()
    period_end = rules.last_closed_month(cfg.today or dt.date.today())
    period = period_end.strftime("%Y-%m")
    pm = systems.RedminePm(systems.redmine(cfg))
    with app.engine.begin() as conn:
        engagements = links.engagements(conn)
    started = []
    for item in engagements:
        project_id = item.get("redmine/project")
        if not project_id or "tryton/sale" not in item:
            continue
        project = pm.project(project_id)
        if project is None or str(project.get("name", "")).startswith("[ZRUŠENO]"):
            continue
        template = rules.template_of_project(project.get("description"), cfg)
        if cfg.templates[template].billing != "time_and_material":
            continue
        entries = pm.unbilled_time(project_id, period_end)
        if not entries:
            continue
        started.append(
            engine.enqueue(
                app.settings,
                FLOW,
                str(project_id),
                period,
                entries,
                subject=f"{project['name']}: {period}"[:200],
                workflow_id=workflow_id(project_id, period),
            )
        )
    return started
