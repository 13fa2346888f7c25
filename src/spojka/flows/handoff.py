"""Sales → delivery handoff: a won deal becomes a Redmine project and a Tryton sales order.

The workflow id is derived from the deal (``handoff:<crm>:<deal id>``), so a second *won*
event or a re-run starts nothing new. Every step answers an envelope (``ok`` / ``transient``
/ ``error``) instead of raising, so the workflow decides: transient failures wait durably
and retry, permanent ones compensate. Lead time won → project ready is kept in the run record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from dbos import DBOS

from spojka.bootstrap import current
from spojka.core.db import transaction
from spojka.core.errors import SpojkaError, TransientError
from spojka.core.logging import get_logger
from spojka.flows import links, rules, systems
from spojka.flows.rules import Deal
from spojka.governance import audit
from spojka.runtime import FlowResult, Outcome, await_decision, flow, step

log = get_logger("spojka.flows.handoff")

FLOW = "flows.handoff"
MAX_TRANSIENT_ATTEMPTS = 8
MAX_RECHECKS = 5


def workflow_id(source: str, deal_id: str) -> str:
    return f"handoff:{source}:{deal_id}"


Envelope = dict[str, Any]


def guarded(fn: Callable[[], Any]) -> Envelope:
    """Run one external call; map Spojka's error classes to an envelope."""
    try:
        return {"ok": True, "value": fn()}
    except TransientError as exc:
        return {"ok": False, "transient": True, "error": exc.message}
    except SpojkaError as exc:
        return {"ok": False, "transient": False, "error": exc.message}


def retrying(
    call: Callable[..., Envelope], *args: Any, attempts: int = MAX_TRANSIENT_ATTEMPTS
) -> Envelope:
    """Call a step until it succeeds or fails permanently; waits durably between tries."""
    result: Envelope = {"ok": False, "transient": True, "error": "not tried"}
    for attempt in range(attempts):
        result = call(*args)
        if result["ok"] or not result.get("transient"):
            return result
        DBOS.sleep(min(0.5 * 2**attempt, 20.0))
    return {
        **result,
        "transient": False,
        "error": f"gave up after {attempts} tries: " + str(result.get("error")),
    }


def _audit(action: str, object_type: str, object_id: str, after: dict[str, Any]) -> None:
    with transaction(current().sessions) as session:
        audit.record(
            session,
            actor="spojka",
            role="system",
            action=action,
            object_type=object_type,
            object_id=object_id,
            after=after,
        )


# -- steps ---------------------------------------------------------------------------------


@step(name="handoff.fetch_deal")
def fetch_deal(source: str, deal_id: str) -> Envelope:
    cfg = systems.config()
    return guarded(lambda: systems.crm(cfg, source).fetch_deal(deal_id).to_dict())


@step(name="handoff.check")
def check(deal_data: dict[str, Any]) -> Envelope:
    """Pre-flight: mandatory data, customer standing in the ERP, no project linked yet."""
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)

    def run() -> dict[str, Any]:
        with current().engine.begin() as conn:
            canonical = links.engagement_id(conn, deal.source, deal.id)
            project = links.linked(conn, canonical).get("redmine/project")
        overdue = None
        if deal.ico and rules.valid_ico(deal.ico) and cfg.systems.tryton is not None:
            overdue = systems.TrytonErp(systems.tryton(cfg)).overdue(deal.ico)
        problems = rules.preflight(deal, config=cfg, linked_project=project, overdue=overdue)
        return {"problems": problems, "template": rules.choose_template(deal, cfg)}

    return guarded(run)


@step(name="handoff.ask_owner")
def ask_owner(deal_data: dict[str, Any], problems: list[str], round_no: int) -> Envelope:
    """A task for the deal owner in the CRM naming every problem (once per round)."""
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)
    text = "Předání do realizace čeká na doplnění / the handoff waits for:\n- " + "\n- ".join(
        problems
    )

    def run() -> str:
        side = systems.crm(cfg, deal.source)
        task = side.open_task(
            deal,
            f"Doplnit údaje k předání: {deal.name}"[:180],
            text,
            f"{deal.key}:check:{round_no}",
        )
        _audit("handoff.preflight_failed", "opportunity", deal.key, {"problems": problems})
        return task

    return guarded(run)


@step(name="handoff.project")
def provision_project(deal_data: dict[str, Any], template: str) -> Envelope:
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)
    plan = rules.plan_project(deal, template, cfg)

    def run() -> dict[str, Any]:
        pm = systems.RedminePm(systems.redmine(cfg))
        project = pm.ensure_project(
            plan,
            pm_login=cfg.people.pm_redmine_login,
            manager_role=cfg.people.redmine_manager_role,
            key=deal.key,
        )
        _audit(
            "handoff.project_created",
            "redmine_project",
            plan.identifier,
            {"deal": deal.key, "template": template, "url": project["url"]},
        )
        return {**project, "plan": plan.to_dict()}

    return guarded(run)


@step(name="handoff.order")
def provision_order(deal_data: dict[str, Any], template: str) -> Envelope:
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)
    plan = rules.plan_project(deal, template, cfg)
    product = cfg.templates[template].product

    def run() -> dict[str, Any]:
        erp = systems.TrytonErp(systems.tryton(cfg))
        if deal.source == "tryton":
            # Tryton's own opportunity already converted into a sale: use that one.
            existing = systems.TrytonCrm(erp.client, "").sale_of(deal.id)
            if existing is not None:
                (row,) = erp.client.read("sale.sale", [existing], ["party"])
                return {"party": int(row["party"]), "sale": erp.confirm_sale(existing)}
        party = erp.ensure_party(deal, deal.key)
        sale = erp.ensure_sale(deal, party, plan, product, deal.key)
        _audit(
            "handoff.order_created",
            "tryton_sale",
            str(sale["id"]),
            {"deal": deal.key, "party": party, "number": sale.get("number")},
        )
        return {"party": party, "sale": sale}

    return guarded(run)


@step(name="handoff.compensate")
def compensate(deal_data: dict[str, Any], identifier: str, error: str) -> Envelope:
    """Undo the project of a handoff whose order failed, and say so on the deal."""
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)

    def run() -> bool:
        closed = systems.RedminePm(systems.redmine(cfg)).close_project(identifier, error)
        side = systems.crm(cfg, deal.source)
        side.add_note(
            deal.id,
            f"⚠ Spojka: předání do realizace selhalo / handoff failed: {error}. "
            f"Projekt {identifier} byl uzavřen; opravte údaje a spusťte předání znovu.",
            f"{deal.key}:failed",
        )
        side.open_task(deal, f"Chyba předání: {deal.name}"[:180], error, f"{deal.key}:failed")
        _audit(
            "handoff.compensated", "redmine_project", identifier, {"deal": deal.key, "error": error}
        )
        return closed

    return guarded(run)


@step(name="handoff.link")
def link_all(deal_data: dict[str, Any], project_id: str, sale_id: str, party_id: str) -> Envelope:
    deal = Deal.from_dict(deal_data)

    def run() -> str:
        with current().engine.begin() as conn:
            canonical = links.engagement_id(conn, deal.source, deal.id)
            links.link(conn, canonical, deal.source, "opportunity", deal.id)
            links.link(conn, canonical, "redmine", "project", project_id)
            links.link(conn, canonical, "tryton", "sale", sale_id)
            if deal.ico:
                account = links.engagement_id(conn, "ico", deal.ico)
                links.link(conn, account, "ico", "account", deal.ico)
                links.link(conn, account, "tryton", "party", party_id)
                if deal.source == "bottlecrm" and deal.account_id:
                    links.link(conn, account, "bottlecrm", "account", deal.account_id)
                links.attach_to_account(conn, account, canonical)
        return canonical

    return guarded(run)


@step(name="handoff.write_back")
def write_back(
    deal_data: dict[str, Any], project: dict[str, Any], sale: dict[str, Any]
) -> Envelope:
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)

    def run() -> bool:
        text = (
            f"✅ Projekt připraven / project ready: {project['url']}\n"
            f"Stav: připraveno k zahájení; milníky: "
            + ", ".join(
                f"{m['name']} ({m['due_date']}, {m['amount']} {deal.currency})"
                for m in project["plan"]["milestones"]
            )
            + f"\nObjednávka v ERP: {sale.get('number') or sale['id']} ({sale.get('state')})"
        )
        return systems.crm(cfg, deal.source).add_note(deal.id, text, f"{deal.key}:ready")

    return guarded(run)


@step(name="handoff.notify")
def notify(deal_data: dict[str, Any], project: dict[str, Any], sale: dict[str, Any]) -> Envelope:
    cfg = systems.config()
    deal = Deal.from_dict(deal_data)
    recipients = sorted(
        {cfg.people.pm_email, deal.owner_email or cfg.people.account_owner_fallback}
    )
    text = (
        f"Obchod {deal.name} pro {deal.account_name} je vyhraný a předaný do realizace.\n\n"
        f"Projekt: {project['url']}\nObjednávka: {sale.get('number') or sale['id']}\n"
        f"Rozpočet: {project['plan']['budget_hours']} h, {project['plan']['budget_money']} "
        f"{deal.currency}\n"
    )

    def run() -> str:
        return systems.notify(
            cfg,
            key=f"{deal.key}:ready-mail",
            to=recipients,
            subject=f"Nový projekt: {project['plan']['name']}",
            text=text,
        )

    return guarded(run)


@step(name="handoff.clock")
def clock() -> float:
    return time.time()


# -- the workflow ----------------------------------------------------------------------------


def _failed(error: str, **detail: Any) -> FlowResult:
    return FlowResult(Outcome.failed, detail={"error": error, **detail})


@flow(FLOW, subject_arg="subject")
def handoff(
    source: str, deal_id: str, won_at: float | None = None, subject: str = ""
) -> FlowResult:
    """Won deal → pre-flight → Redmine project → Tryton customer and order → links → CRM → mail."""
    won_at = won_at or clock()
    human = False
    deal_env = retrying(fetch_deal, source, deal_id)
    if not deal_env["ok"]:
        return _failed(deal_env["error"], stage="fetch")
    deal_data = deal_env["value"]
    for round_no in range(1, MAX_RECHECKS + 1):
        checked = retrying(check, deal_data)
        if not checked["ok"]:
            return _failed(checked["error"], stage="check")
        problems = checked["value"]["problems"]
        if not problems:
            break
        if any("already linked" in p for p in problems):
            # A re-run for a deal that got its project: nothing new, no task.
            return FlowResult(Outcome.rejected, detail={"problems": problems, "duplicate": True})
        retrying(ask_owner, deal_data, problems, round_no)
        human = True
        answer = await_decision(
            subject=f"Předání {deal_data['name']}"[:200],
            summary="Doplňte v CRM a schvalte 'approve' pro novou kontrolu:\n- "
            + "\n- ".join(problems),
            topic=f"handoff-recheck-{round_no}",
            required_role="approver",
        )
        if answer is None or answer.get("decision") != "approve":
            return FlowResult(Outcome.rejected, detail={"problems": problems})
        deal_env = retrying(fetch_deal, source, deal_id)
        if not deal_env["ok"]:
            return _failed(deal_env["error"], stage="fetch")
        deal_data = deal_env["value"]
    else:
        return FlowResult(Outcome.rejected, detail={"problems": problems})
    template = checked["value"]["template"]

    project_env = retrying(provision_project, deal_data, template)
    if not project_env["ok"]:
        return _failed(project_env["error"], stage="project")
    project = project_env["value"]

    order_env = retrying(provision_order, deal_data, template)
    if not order_env["ok"]:
        retrying(compensate, deal_data, project["identifier"], order_env["error"])
        return _failed(
            order_env["error"], stage="order", compensated=True, project=project["identifier"]
        )
    order = order_env["value"]
    sale = order["sale"]

    linked = retrying(link_all, deal_data, str(project["id"]), str(sale["id"]), str(order["party"]))
    wrote = retrying(write_back, deal_data, project, sale)
    mailed = retrying(notify, deal_data, project, sale)
    ready_at = clock()
    detail = {
        "deal": f"{source}:{deal_id}",
        "project": project["identifier"],
        "project_url": project["url"],
        "sale": sale["id"],
        "sale_number": sale.get("number"),
        "party": order["party"],
        "canonical_id": linked.get("value"),
        "template": template,
        "amount": deal_data.get("amount"),
        "currency": deal_data.get("currency"),
        "lead_time_s": rules.lead_time_seconds(won_at, ready_at),
        "written_back": wrote["ok"],
        "notified": mailed["ok"],
        "message_id": mailed.get("value"),
    }
    if not (wrote["ok"] and mailed["ok"]):
        detail["warnings"] = [e["error"] for e in (wrote, mailed) if not e["ok"]]
    return FlowResult(Outcome.approved if human else Outcome.automated, detail=detail)


# -- triggers --------------------------------------------------------------------------------


def start(source: str, deal_id: str, *, won_at: float | None = None, name: str = "") -> str:
    """Queue the handoff of one won deal; the same deal twice runs once."""
    from spojka.runtime import engine

    return engine.enqueue(
        current().settings,
        FLOW,
        source,
        deal_id,
        won_at=won_at or time.time(),
        subject=(name or f"{source}:{deal_id}")[:200],
        workflow_id=workflow_id(source, deal_id),
    )


def poll_tryton_won(since_hours: float | None = None) -> list[str]:
    """Tryton's CRM has no webhooks: queue a handoff for every won opportunity (idempotent)."""
    import datetime as dt

    cfg = systems.config()
    side = systems.TrytonCrm(systems.tryton(cfg), cfg.people.account_owner_fallback)
    since = (
        dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=since_hours)
        if since_hours
        else None
    )
    return [start("tryton", str(i)) for i in side.won_since(since)]


def amount_of(detail: dict[str, Any]) -> Decimal:
    return Decimal(str(detail.get("amount") or 0))
