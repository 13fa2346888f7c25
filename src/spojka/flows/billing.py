"""Billing: a milestone closed in Redmine → invoice draft in Tryton → approval → posted →
number, amount and due date on the deal.

Redmine has no webhooks, so :func:`poll_milestones` lists the closed versions of every
project Spojka provisioned and queues ``flows.billing`` once per version
(``billing:redmine:<version id>``). The time from milestone done (the version's
``updated_on``) to invoice posted is kept in the run record.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from spojka.bootstrap import current
from spojka.core.errors import PermanentError
from spojka.flows import links, rules, systems
from spojka.flows.config import FlowsConfig
from spojka.flows.handoff import Envelope, _audit, clock, guarded, retrying
from spojka.runtime import FlowResult, Outcome, await_decision, flow, step

FLOW = "flows.billing"


def workflow_id(version_id: int | str) -> str:
    return f"billing:redmine:{version_id}"


def _engagement(project_id: str) -> dict[str, str]:
    with current().engine.begin() as conn:
        canonical = links.canonical_for(conn, "redmine", "project", project_id)
        if canonical is None:
            raise PermanentError(f"Redmine project {project_id} is not linked to a deal")
        return links.linked(conn, canonical)


def _sale_to_invoice(
    cfg: FlowsConfig, linked: dict[str, str]
) -> tuple[systems.TrytonErp, dict[str, Any]]:
    """Tryton and the facts of the engagement's sales order, which must have a product line."""
    erp = systems.TrytonErp(systems.tryton(cfg))
    sale = erp.sale_facts(int(linked["tryton/sale"]))
    if sale["product"] is None:
        raise PermanentError(f"sales order {linked['tryton/sale']} has no product line")
    return erp, sale


@step(name="billing.draft")
def draft(project_id: str, version: dict[str, Any]) -> Envelope:
    cfg = systems.config()

    def run() -> dict[str, Any]:
        linked = _engagement(project_id)
        amount = rules.milestone_amount(version.get("description"))
        if amount is None:
            raise PermanentError(f"milestone {version['name']!r} has no billing amount")
        erp, sale = _sale_to_invoice(cfg, linked)
        invoice_id = erp.invoice_draft(
            party=sale["party"],
            currency=sale["currency"],
            product=int(sale["product"]),
            amount=amount,
            text=f"Milník {version['name']} – objednávka {sale['number']}",
            sale_number=sale["number"],
            payment_days=cfg.limits.payment_days,
            key=f"billing:{version['id']}",
        )
        invoice = erp.invoice(invoice_id)
        _audit(
            "billing.draft",
            "tryton_invoice",
            str(invoice_id),
            {"milestone": version["name"], "amount": str(amount)},
        )
        deal = {k: v for k, v in linked.items() if k.endswith("/opportunity")}
        return {"invoice": invoice, "amount": str(amount), "deal": deal}

    return guarded(run)


@step(name="billing.post")
def post(invoice_id: int) -> Envelope:
    cfg = systems.config()

    def run() -> dict[str, Any]:
        invoice = systems.TrytonErp(systems.tryton(cfg)).post_invoice(invoice_id)
        _audit(
            "billing.posted",
            "tryton_invoice",
            str(invoice_id),
            {"number": invoice["number"], "total": invoice["total"]},
        )
        return invoice

    return guarded(run)


@step(name="billing.write_back")
def write_back(
    deal: dict[str, str], invoice: dict[str, Any], what: str, project_id: str | None = None
) -> Envelope:
    """Number, amount and due date onto the deal (a note) and the project (its ledger page)."""
    cfg = systems.config()

    def run() -> bool:
        done = False
        for ref, deal_id in deal.items():
            source = ref.split("/", 1)[0]
            text = (
                f"🧾 Faktura {invoice['number']} vystavena za {what}: "
                f"{invoice['total']} {invoice['currency']} s DPH "
                f"(bez DPH {invoice['untaxed']}), splatnost {invoice['due_date']}"
            )
            done |= systems.crm(cfg, source).add_note(deal_id, text, f"invoice:{invoice['id']}")
        if project_id:
            done |= systems.RedminePm(systems.redmine(cfg)).upsert_ledger(
                project_id,
                str(invoice["number"]),
                what=what,
                amount=f"{invoice['total']} {invoice['currency']}",
                due=str(invoice["due_date"]),
                state="vystavena / issued",
            )
        return done

    return guarded(run)


def release_and_post(
    invoice: dict[str, Any], *, subject: str, summary: str
) -> FlowResult | tuple[dict[str, Any], bool]:
    """Post an invoice draft, first asking an approver when it is above the limit.

    Returns the posted invoice and whether a person released it, or the run's result when
    the draft was rejected or posting failed.
    """
    human = rules.needs_approval(
        Decimal(invoice["total"]), systems.config().limits.invoice_approval_above
    )
    if human:
        answer = await_decision(subject=subject[:200], summary=summary, topic="invoice")
        if answer is None or answer.get("decision") != "approve":
            return FlowResult(
                Outcome.rejected,
                detail={"invoice": invoice["id"], "reason": (answer or {}).get("reason")},
            )
    posted = retrying(post, int(invoice["id"]))
    if not posted["ok"]:
        return FlowResult(Outcome.failed, detail={"error": posted["error"], "stage": "post"})
    return posted["value"], human


@flow(FLOW, subject_arg="subject")
def billing(
    project_id: str, version: dict[str, Any], done_at: float | None = None, subject: str = ""
) -> FlowResult:
    """Invoice one closed milestone; an approver releases drafts above the limit."""
    drafted = retrying(draft, project_id, version)
    if not drafted["ok"]:
        return FlowResult(Outcome.failed, detail={"error": drafted["error"], "stage": "draft"})
    invoice = drafted["value"]["invoice"]
    released = release_and_post(
        invoice,
        subject=f"Faktura za {version['name']}",
        summary=f"Návrh faktury {invoice['total']} {invoice['currency']} za milník "
        f"{version['name']} čeká na schválení",
    )
    if isinstance(released, FlowResult):
        return released
    final, human = released
    wrote = retrying(
        write_back, drafted["value"]["deal"], final, f"milník {version['name']}", project_id
    )
    issued_at = clock()
    return FlowResult(
        Outcome.approved if human else Outcome.automated,
        detail={
            "milestone": version["name"],
            "version": version["id"],
            "invoice": final["id"],
            "number": final["number"],
            "total": final["total"],
            "currency": final["currency"],
            "due_date": final["due_date"],
            "time_to_invoice_s": None if done_at is None else max(0.0, issued_at - done_at),
            "written_back": wrote["ok"],
        },
    )


def _parse_time(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def poll_milestones() -> list[str]:
    """Queue billing for every closed milestone of a provisioned project (idempotent)."""
    from spojka.runtime import engine

    app = current()
    cfg = systems.config()
    pm = systems.RedminePm(systems.redmine(cfg))
    with app.engine.begin() as conn:
        engagements = links.engagements(conn)
    started = []
    for item in engagements:
        project_id = item.get("redmine/project")
        if not project_id or "tryton/sale" not in item:
            continue
        project = pm.client.get(f"/projects/{project_id}.json")["project"]
        if str(project.get("name", "")).startswith("[ZRUŠENO]"):
            continue
        template = rules.template_of_project(project.get("description"), cfg)
        if cfg.templates[template].billing != "milestones":
            continue  # billed by its time entries (flows.timesheets)
        for version in pm.closed_versions(str(project["identifier"])):
            snapshot = {
                "id": version["id"],
                "name": version["name"],
                "description": version.get("description"),
                "due_date": version.get("due_date"),
            }
            started.append(
                engine.enqueue(
                    app.settings,
                    FLOW,
                    str(project_id),
                    snapshot,
                    done_at=_parse_time(version.get("updated_on")) or time.time(),
                    subject=f"{project['name']}: {version['name']}"[:200],
                    workflow_id=workflow_id(version["id"]),
                )
            )
    return started
