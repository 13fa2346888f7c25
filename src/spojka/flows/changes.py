"""Change requests: a Redmine "Change request" closed (approved) with extra effort and price
→ after the limits matrix → a supplementary order in Tryton and a line on the BottleCRM deal
(its amount follows); a rejected one is recorded. Every value change is audited and noted on
the deal, so the history stays visible in both places.

Redmine has no webhooks: :func:`poll_change_requests` queues ``flows.change_request`` once per
issue (``change:redmine:<issue id>``).
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from spojka.bootstrap import current
from spojka.core.errors import PermanentError
from spojka.flows import links, rules, systems
from spojka.flows.handoff import Envelope, _audit, clock, guarded, retrying
from spojka.runtime import FlowResult, Outcome, await_decision, flow, step

FLOW = "flows.change_request"
TRACKER = "Change request"
APPROVED_STATUSES = ("Closed", "Resolved")
REJECTED_STATUSES = ("Rejected",)


def workflow_id(issue_id: int | str) -> str:
    return f"change:redmine:{issue_id}"


def _field(issue: dict[str, Any], prefix: str) -> Decimal | None:
    for cf in issue.get("custom_fields", []):
        if str(cf.get("name", "")).startswith(prefix) and cf.get("value") not in (None, ""):
            try:
                return Decimal(str(cf["value"]))
            except ArithmeticError:
                return None
    return None


@step(name="change.apply")
def apply(project_id: str, change: dict[str, Any]) -> Envelope:
    """Supplementary order in Tryton and a line on the deal (each once per change request)."""
    cfg = systems.config()

    def run() -> dict[str, Any]:
        with current().engine.begin() as conn:
            canonical = links.canonical_for(conn, "redmine", "project", project_id)
            if canonical is None:
                raise PermanentError(f"Redmine project {project_id} is not linked to a deal")
            linked = links.linked(conn, canonical)
        price = Decimal(change["price"])
        key = f"change:{change['id']}"
        label = f"Změnový požadavek #{change['id']}: {change['subject']}"[:180]
        erp = systems.TrytonErp(systems.tryton(cfg))
        sale = erp.sale_facts(int(linked["tryton/sale"]))
        supplement = erp._marked("sale.sale", key)
        if supplement is None:
            if sale["product"] is None:
                raise PermanentError("the original order has no product line to extend")
            line = erp._line(int(sale["product"]), Decimal(1), price, label)
            line.pop("_revenue", None)
            addresses = erp.client.search("party.address", [("party", "=", sale["party"])], limit=1)
            (supplement,) = erp.client.create(
                "sale.sale",
                [
                    {
                        "party": sale["party"],
                        "company": erp.client.company_id,
                        "currency": erp.currency_id(sale["currency"]),
                        "description": f"Dodatek k objednávce {sale['number']}"[:200],
                        "reference": sale["number"],
                        "invoice_method": "manual",
                        "comment": f"{label}\n{systems.marker(key)}",
                        "lines": [["create", [line]]],
                        "invoice_address": addresses[0] if addresses else None,
                        "shipment_address": addresses[0] if addresses else None,
                    }
                ],
            )
        with systems.unique_races():
            order = erp.confirm_sale(int(supplement))
        before = after = None
        deal_id = linked.get("bottlecrm/opportunity")
        if deal_id:
            crm = systems.BottleCrm(systems.bottlecrm(cfg), "")
            before = str(crm.client.fetch("opportunities", deal_id).get("amount"))
            items = crm.line_items(deal_id)
            if not any(f"#{change['id']}:" in str(i.get("name")) for i in items):
                crm.client.post(
                    f"/api/opportunities/{deal_id}/line-items/",
                    {"name": label, "quantity": "1", "unit_price": str(price)},
                )
            after = str(crm.client.fetch("opportunities", deal_id).get("amount"))
            crm.add_note(
                deal_id,
                f"Hodnota obchodu změněna / deal value changed: {before} → {after} "
                f"({label}; +{change.get('effort_h')} h; dodatek {order.get('number')})",
                key,
            )
        _audit(
            "change.applied",
            "redmine_issue",
            str(change["id"]),
            {"price": str(price), "before": before, "after": after, "order": order["id"]},
        )
        return {"order": order, "before": before, "after": after, "deal": deal_id}

    return guarded(run)


@step(name="change.record_rejection")
def record_rejection(change: dict[str, Any], reason: str) -> Envelope:
    def run() -> bool:
        _audit(
            "change.rejected",
            "redmine_issue",
            str(change["id"]),
            {"price": change["price"], "reason": reason},
        )
        return True

    return guarded(run)


@flow(FLOW, subject_arg="subject")
def change_request(
    project_id: str, change: dict[str, Any], approved_at: float | None = None, subject: str = ""
) -> FlowResult:
    """Approved change request → limits matrix → order and deal value; rejected → recorded."""
    if change.get("status") in REJECTED_STATUSES:
        retrying(record_rejection, change, "rejected in Redmine")
        return FlowResult(Outcome.rejected, detail={"change": change["id"], "by": "redmine"})
    limit = systems.config().limits.change_request_approval_above
    human = False
    if rules.needs_approval(Decimal(change["price"]), limit):
        human = True
        answer = await_decision(
            subject=f"Změnový požadavek #{change['id']}"[:200],
            summary=f"{change['subject']}: +{change['price']} (+{change.get('effort_h')} h) "
            f"přesahuje limit {limit}",
            topic="change-request",
        )
        if answer is None or answer.get("decision") != "approve":
            reason = str((answer or {}).get("reason") or "no decision")
            retrying(record_rejection, change, reason)
            return FlowResult(Outcome.rejected, detail={"change": change["id"], "reason": reason})
    applied = retrying(apply, project_id, change)
    if not applied["ok"]:
        return FlowResult(Outcome.failed, detail={"error": applied["error"]})
    done = clock()
    return FlowResult(
        Outcome.approved if human else Outcome.automated,
        detail={
            "change": change["id"],
            "price": change["price"],
            "effort_h": change.get("effort_h"),
            "before": applied["value"]["before"],
            "after": applied["value"]["after"],
            "order": applied["value"]["order"]["id"],
            "cycle_time_s": None if approved_at is None else max(0.0, done - approved_at),
        },
    )


def poll_change_requests() -> list[str]:
    """Queue a run for every decided change request in a provisioned project (idempotent)."""
    from spojka.runtime import engine

    app = current()
    cfg = systems.config()
    client = systems.redmine(cfg)
    with app.engine.begin() as conn:
        projects = [e["redmine/project"] for e in links.engagements(conn)]
    trackers = {str(t["name"]): int(t["id"]) for t in client.get("/trackers.json")["trackers"]}
    if TRACKER not in trackers:
        return []
    started = []
    for project_id in projects:
        for issue in client.iter_all(
            "/issues.json",
            "issues",
            project_id=project_id,
            tracker_id=trackers[TRACKER],
            status_id="closed",
        ):
            status = str((issue.get("status") or {}).get("name"))
            price = _field(issue, "Cena")
            if price is None or status not in (*APPROVED_STATUSES, *REJECTED_STATUSES):
                continue
            updated = issue.get("closed_on") or issue.get("updated_on")
            try:
                approved_at = datetime.fromisoformat(str(updated).replace("Z", "+00:00"))
                stamp = approved_at.timestamp()
            except ValueError:
                stamp = time.time()
            change = {
                "id": issue["id"],
                "subject": issue["subject"],
                "status": status,
                "price": str(price),
                "effort_h": str(_field(issue, "Odhad") or 0),
            }
            started.append(
                engine.enqueue(
                    app.settings,
                    FLOW,
                    str(project_id),
                    change,
                    approved_at=stamp,
                    subject=f"#{issue['id']} {issue['subject']}"[:200],
                    workflow_id=workflow_id(issue["id"]),
                )
            )
    return started
