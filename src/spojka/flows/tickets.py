"""Service tickets → CRM: issues in the Redmine "Support" tracker of a customer's project become
tasks on the customer's BottleCRM account, with their status and SLA breach risk.

The SLA (response and resolution hours) comes from the project's template in the flows
configuration. Redmine has no webhooks: :func:`poll_tickets` queues ``flows.service_ticket``
once per issue version, content and risk level
(``ticket:redmine:<issue>:<updated_on>:<content digest>:<risk>``), so a re-poll does nothing,
while a status change — or the clock pushing a ticket into *at risk* or *breached* — updates
the same task (found by its ``[spojka:ticket:<id>]`` marker). The digest is there because
Redmine stamps ``updated_on`` to the second: a change within the second the ticket was created
or last changed keeps the stamp, but not the content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from spojka.bootstrap import current
from spojka.flows import links, rules, systems
from spojka.flows.config import FlowsConfig
from spojka.flows.handoff import Envelope, _audit, guarded, retrying
from spojka.runtime import FlowResult, Outcome, flow, step

FLOW = "flows.service_ticket"
TRACKER = "Support"

RISK_TEXT = {
    "ok": "v pořádku / ok",
    "at_risk": "hrozí překročení / at risk",
    "breached": "překročeno / breached",
    "met": "splněno / met",
}


def workflow_id(ticket: dict[str, Any]) -> str:
    """One run per ticket version, content the CRM shows, and risk level."""
    shown = [ticket[k] for k in ("subject", "status", "is_closed", "priority", "project")]
    shown += [ticket["sla"].get("kind"), ticket["sla"].get("deadline")]
    digest = hashlib.sha1(json.dumps(shown, default=str).encode()).hexdigest()[:10]
    return f"ticket:redmine:{ticket['id']}:{ticket['updated_on']}:{digest}:{ticket['sla']['risk']}"


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def snapshot(
    issue: dict[str, Any], *, cfg: FlowsConfig, template: str, url: str, now: dt.datetime
) -> dict[str, Any]:
    """A ticket as the CRM and the Customer 360 show it: status, SLA deadline, risk."""
    sla = cfg.templates[template].sla
    status = issue.get("status") or {}
    created = _time(issue.get("created_on")) or now
    closed = _time(issue.get("closed_on")) if status.get("is_closed") else None
    state = rules.sla_state(
        created=created,
        status=str(status.get("name")),
        closed=closed or (now if status.get("is_closed") else None),
        response_hours=sla.response_hours,
        resolution_hours=sla.resolution_hours,
        now=now,
        at_risk_share=cfg.limits.sla_at_risk_share,
    )
    return {
        "id": int(issue["id"]),
        "subject": str(issue.get("subject") or ""),
        "status": str(status.get("name")),
        "is_closed": bool(status.get("is_closed")),
        "priority": (issue.get("priority") or {}).get("name"),
        "project": (issue.get("project") or {}).get("name"),
        "created_on": issue.get("created_on"),
        "updated_on": issue.get("updated_on"),
        "sla_response_hours": sla.response_hours,
        "sla_resolution_hours": sla.resolution_hours,
        "sla": state.to_dict(),
        "as_of": now.isoformat(timespec="minutes"),
        "url": url,
    }


def task_description(ticket: dict[str, Any]) -> str:
    sla = ticket["sla"]
    left = (
        f"{sla['hours_left']} h do termínu / to the deadline"
        if sla["hours_left"] >= 0
        else f"{-sla['hours_left']} h po termínu / past the deadline"
    )
    return "\n".join(
        [
            f"Redmine #{ticket['id']} ({ticket['project']}): {ticket['subject']}",
            f"Stav / status: {ticket['status']}",
            f"SLA ({ticket['sla_response_hours']} h reakce, {ticket['sla_resolution_hours']} h "
            f"vyřešení): termín {sla['kind']} {sla['deadline']} UTC",
            f"Riziko / SLA risk ({ticket['as_of']}): {RISK_TEXT[sla['risk']]} — {left}",
            ticket["url"],
        ]
    )


@step(name="ticket.to_crm")
def to_crm(account_id: str, ticket: dict[str, Any]) -> Envelope:
    """Create or update the account's task for the ticket."""
    cfg = systems.config()

    def run() -> dict[str, str]:
        side = systems.BottleCrm(systems.bottlecrm(cfg), systems._ref(cfg, "bottlecrm").url)
        risk = ticket["sla"]["risk"]
        task_id, change = side.upsert_account_task(
            account_id,
            f"ticket:{ticket['id']}",
            title=f"Podpora #{ticket['id']}: {ticket['subject']}",
            status=rules.crm_task_status(ticket["status"], ticket["is_closed"]),
            priority="High"
            if risk in ("at_risk", "breached") and not ticket["is_closed"]
            else "Medium",
            due_date=dt.date.fromisoformat(ticket["sla"]["deadline"][:10]),
            description=task_description(ticket),
        )
        if change != "unchanged":
            _audit(
                "ticket.synced",
                "redmine_issue",
                str(ticket["id"]),
                {"task": task_id, "change": change, "status": ticket["status"], "risk": risk},
            )
        return {"task": task_id, "change": change}

    return guarded(run)


@flow(FLOW, subject_arg="subject")
def service_ticket(account_id: str, ticket: dict[str, Any], subject: str = "") -> FlowResult:
    """One version of a support ticket onto the customer's CRM account."""
    synced = retrying(to_crm, account_id, ticket)
    if not synced["ok"]:
        return FlowResult(Outcome.failed, detail={"error": synced["error"]})
    return FlowResult(
        Outcome.automated,
        detail={
            "issue": ticket["id"],
            "status": ticket["status"],
            "risk": ticket["sla"]["risk"],
            **synced["value"],
        },
    )


def support_issues(pm: systems.RedminePm, project_id: str) -> list[dict[str, Any]]:
    tracker = pm._lookup("trackers").get(TRACKER)
    if tracker is None:
        return []
    return list(
        pm.client.iter_all(
            "/issues.json", "issues", project_id=project_id, tracker_id=tracker, status_id="*"
        )
    )


def poll_tickets(now: dt.datetime | None = None) -> list[str]:
    """Queue the CRM update of every support ticket whose status or risk changed."""
    from spojka.runtime import engine

    app = current()
    cfg = systems.config()
    now = now or dt.datetime.now(dt.UTC)
    pm = systems.RedminePm(systems.redmine(cfg))
    with app.engine.begin() as conn:
        targets = []
        for item in links.engagements(conn):
            account = links.account_of(conn, item["canonical_id"])
            crm_account = links.linked(conn, account).get("bottlecrm/account") if account else None
            if crm_account:
                targets.append((item["redmine/project"], crm_account))
    started = []
    for project_id, crm_account in targets:
        project = pm.project(project_id)
        if project is None:
            continue
        template = rules.template_of_project(project.get("description"), cfg)
        for issue in support_issues(pm, project_id):
            ticket = snapshot(
                issue, cfg=cfg, template=template, url=pm.url(f"issues/{issue['id']}"), now=now
            )
            started.append(
                engine.enqueue(
                    app.settings,
                    FLOW,
                    crm_account,
                    ticket,
                    subject=f"#{ticket['id']} {ticket['subject']}"[:200],
                    workflow_id=workflow_id(ticket),
                )
            )
    return started
