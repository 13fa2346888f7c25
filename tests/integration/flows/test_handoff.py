"""Won deal → project, customer and order, against real BottleCRM, Tryton and Redmine.

Each test wins a deal in BottleCRM; its signed ``deal.won`` webhook reaches Spojka's API,
which queues the durable handoff.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from spojka.flows import billing, changes, handoff, links, local
from spojka.runtime import engine, runs
from spojka.runtime.flows import signal_decision
from tests.integration.flows.helpers import wait_until

pytestmark = [pytest.mark.flows, pytest.mark.crm, pytest.mark.tryton, pytest.mark.redmine]


def _suffix() -> str:
    return secrets.token_hex(3)


def _result(stack: local.LocalStack, deal_id: str, timeout: float = 180.0) -> dict[str, Any]:
    settings = stack.app.settings
    wid = handoff.workflow_id("bottlecrm", deal_id)
    wait_until(f"the handoff of {deal_id} was queued", lambda: _exists(stack, wid))
    result: dict[str, Any] = engine.wait_result(settings, wid, timeout=timeout)
    return result


def _exists(stack: local.LocalStack, wid: str) -> bool:
    try:
        engine.status(stack.app.settings, wid)
    except Exception:
        return False
    return True


def _sales_marked(stack: local.LocalStack, key: str) -> list[int]:
    with stack.tryton_client() as erp:
        return list(erp.search("sale.sale", [("comment", "like", f"%[spojka:{key}]%")]))


def test_won_deal_becomes_project_customer_and_order_with_links_and_mail(
    stack: local.LocalStack,
) -> None:
    crm = stack.crm_client()
    deal_id = local.czech_deal(crm, suffix=_suffix())
    local.win(crm, deal_id)
    result = _result(stack, deal_id)
    assert result["outcome"] == "automated", result

    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
        versions = pm.get(f"/projects/{project['id']}/versions.json")["versions"]
        issues = pm.get("/issues.json", project_id=project["id"], status_id="*")["issues"]
        members = pm.get(f"/projects/{project['id']}/memberships.json")["memberships"]
    assert project["name"].startswith("Strojírny Vysočina s.r.o.")
    assert "IČO 25596641" in project["description"]
    assert [(v["name"], v["due_date"]) for v in versions] == [
        ("Analýza a návrh", "2027-01-18"),
        ("Implementace", "2027-02-18"),
        ("Předání do provozu", "2027-03-05"),
    ]
    assert "Fakturace: 72000.00 EUR" in versions[0]["description"]
    assert {i["subject"] for i in issues} >= {"Úvodní workshop", "Migrace dat"}
    assert len(issues) == 6
    assert sum(i["estimated_hours"] for i in issues) == 184
    assert any(m["user"]["name"] == "Petr Dvořák" for m in members)

    with stack.tryton_client() as erp:
        (party,) = erp.read("party.party", [result["party"]], ["name", "identifiers"])
        codes = {i["code"] for i in erp.read("party.identifier", party["identifiers"], ["code"])}
        (sale,) = erp.read(
            "sale.sale",
            [result["sale"]],
            ["state", "untaxed_amount", "total_amount", "currency.code", "lines"],
        )
    assert {"25596641", "CZ25596641"} <= codes
    assert sale["state"] in ("confirmed", "processing")
    assert str(sale["untaxed_amount"]) == "240000.00"
    assert str(sale["total_amount"]) == "290400.00"  # with DPH 21 %
    assert sale["currency."]["code"] == "EUR"
    assert len(sale["lines"]) == 3

    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert any(result["project_url"] in note and "Projekt připraven" in note for note in notes)

    sent = [m for m in stack.mail.caught if result["message_id"].encode() in m.raw]
    assert any(
        set(m.rcpt_tos) == {"petr.dvorak@example.cz", "spravce@spojka-demo.cz"} for m in sent
    )

    with stack.app.engine.begin() as conn:
        canonical = links.canonical_for(conn, "bottlecrm", "opportunity", deal_id)
        assert canonical is not None
        linked = links.linked(conn, canonical)
    assert linked["redmine/project"] == str(project["id"])
    assert linked["tryton/sale"] == str(result["sale"])

    with stack.app.sessions() as session:
        (run,) = runs.list_runs(session, flow=handoff.FLOW, limit=1000, outcome="automated")[:1]
    assert run.detail is not None and run.detail["lead_time_s"] > 0


def test_a_second_won_event_creates_nothing_new(stack: local.LocalStack) -> None:
    crm = stack.crm_client()
    deal_id = local.czech_deal(crm, suffix=_suffix(), ico="27082440", dic="CZ27082440")
    local.win(crm, deal_id)
    first = _result(stack, deal_id)
    assert first["outcome"] == "automated", first
    mails_before = len(stack.mail.caught)

    # Lost and won again: BottleCRM sends a second, differently identified deal.won.
    crm.update("opportunities", deal_id, {"stage": "NEGOTIATION"})
    local.win(crm, deal_id)
    again = handoff.start("bottlecrm", deal_id)
    assert again == handoff.workflow_id("bottlecrm", deal_id)
    assert _result(stack, deal_id) == first

    with stack.redmine_client() as pm:
        projects = [
            p
            for p in pm.iter_all("/projects.json", "projects")
            if p["identifier"] == first["project"]
        ]
    assert len(projects) == 1
    assert len(_sales_marked(stack, f"bottlecrm:{deal_id}")) == 1
    assert len(stack.mail.caught) == mails_before
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert sum("Projekt připraven" in n for n in notes) == 1


def test_preflight_failure_opens_a_task_and_waits_until_fixed(stack: local.LocalStack) -> None:
    crm = stack.crm_client()
    suffix = _suffix()
    deal_id = local.czech_deal(crm, suffix=suffix, ico="25596642", with_contact=False)
    local.win(crm, deal_id)
    wid = handoff.workflow_id("bottlecrm", deal_id)

    def pending() -> int | None:
        with stack.app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == wid:
                    return decision.id
        return None

    decision_id = wait_until("the handoff asked for a re-check", pending)
    tasks = [
        t
        for t in crm.iter_all("tasks")
        if "Doplnit údaje k předání" in t["title"] and suffix in t["title"]
    ]
    assert len(tasks) == 1
    task = crm.fetch("tasks", tasks[0]["id"])
    assert "IČO '25596642'" in task["description"]
    assert "kontaktní osoba" in task["description"]
    with stack.redmine_client() as pm:
        assert pm.get("/projects.json", limit=100)["total_count"] >= 0
    assert engine.status(stack.app.settings, wid) == "PENDING"

    # The owner fixes the customer and adds a contact, then asks for a re-check.
    deal = crm.fetch("opportunities", deal_id)
    account_id = deal["account"]["id"]
    crm.update("accounts", account_id, {"description": "IČO: 25596641\nDIČ: CZ25596641"})
    contact = crm.create(
        "contacts",
        {
            "first_name": "Ľubica",
            "last_name": "Hrašková",
            "email": f"l.{suffix}@example.sk",
            "account": account_id,
        },
    )
    crm.update("opportunities", deal_id, {"contacts": [contact]})
    signal_decision(
        decision_id=decision_id,
        decision="approve",
        actor="obchodnik",
        role="approver",
        reason="doplněno",
    )
    result = _result(stack, deal_id)
    assert result["outcome"] == "approved", result


def test_erp_rejection_closes_the_project_and_flags_the_deal(stack: local.LocalStack) -> None:
    crm = stack.crm_client()
    # Tryton has no USD: the order is rejected for good after the project was made.
    deal_id = local.czech_deal(
        crm, suffix=_suffix(), currency="USD", ico="45274649", dic="CZ45274649"
    )
    local.win(crm, deal_id)
    result = _result(stack, deal_id)
    assert result["outcome"] == "failed"
    assert result["compensated"] is True
    assert "USD" in result["error"]
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
        versions = pm.get(f"/projects/{project['id']}/versions.json")["versions"]
    assert project["name"].startswith("[ZRUŠENO]")
    assert versions and all(v["status"] == "closed" for v in versions)
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert any("předání do realizace selhalo" in n and "USD" in n for n in notes)
    assert _sales_marked(stack, f"bottlecrm:{deal_id}") == []
    with stack.app.engine.begin() as conn:
        canonical = links.canonical_for(conn, "bottlecrm", "opportunity", deal_id)
    assert canonical is None


def test_pm_down_is_retried_and_the_handoff_completes(stack: local.LocalStack) -> None:
    crm = stack.crm_client()
    stack.pm.kill()
    try:
        deal_id = local.czech_deal(crm, suffix=_suffix(), ico="00006947", dic="CZ00006947")
        local.win(crm, deal_id)
        wid = handoff.workflow_id("bottlecrm", deal_id)
        client = engine.client(stack.app.settings)

        def failed_attempt() -> bool:
            if not _exists(stack, wid):
                return False
            steps = client.list_workflow_steps(wid)
            return any(
                s["function_name"] == "handoff.project"
                and isinstance(s["output"], dict)
                and s["output"].get("transient")
                for s in steps
            )

        wait_until("a failed attempt to reach Redmine", failed_attempt)
    finally:
        stack.pm.restart()
    result = _result(stack, deal_id)
    assert result["outcome"] == "automated", result
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
        issues = pm.get("/issues.json", project_id=project["id"], status_id="*")["issues"]
    assert len(issues) == 6  # the retried step made each WBS task once


def test_closed_milestone_is_invoiced_after_approval_and_shown_on_the_deal(
    stack: local.LocalStack,
) -> None:
    crm = stack.crm_client()
    deal_id = local.czech_deal(crm, suffix=_suffix(), ico="49240030", dic="CZ49240030")
    local.win(crm, deal_id)
    result = _result(stack, deal_id)
    assert result["outcome"] == "automated", result
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
        first = pm.get(f"/projects/{project['id']}/versions.json")["versions"][0]
        pm.put(f"/versions/{first['id']}.json", {"version": {"status": "closed"}})

    started = billing.poll_milestones()
    wid = billing.workflow_id(first["id"])
    assert wid in started
    assert billing.poll_milestones().count(wid) == 1  # polling again starts nothing new

    def pending() -> int | None:
        with stack.app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == wid:
                    return decision.id
        return None

    decision_id = wait_until("the invoice draft waits for an approver", pending)
    with stack.tryton_client() as erp:
        (draft,) = erp.search_read(
            "account.invoice",
            [("comment", "like", f"%[spojka:billing:{first['id']}]%")],
            ["state", "type", "untaxed_amount", "tax_amount"],
        )
    assert (draft["state"], draft["type"]) == ("draft", "out")
    assert (str(draft["untaxed_amount"]), str(draft["tax_amount"])) == ("72000.00", "15120.00")

    signal_decision(
        decision_id=decision_id, decision="approve", actor="ucetni", role="approver", reason=None
    )
    invoiced = engine.wait_result(stack.app.settings, wid, timeout=120)
    assert invoiced["outcome"] == "approved", invoiced
    assert invoiced["number"].startswith("FV")
    assert invoiced["total"] == "87120.00"
    assert invoiced["time_to_invoice_s"] is not None
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert any(invoiced["number"] in n and "87120.00 EUR" in n for n in notes)


def test_the_same_handoff_with_trytons_own_won_opportunity(stack: local.LocalStack) -> None:
    with stack.tryton_client() as erp:
        opportunity = local.tryton_won_opportunity(erp, suffix=_suffix())
        (opp,) = erp.read("sale.opportunity", [opportunity], ["sales"])
    started = handoff.poll_tryton_won()
    wid = handoff.workflow_id("tryton", str(opportunity))
    assert wid in started
    result = engine.wait_result(stack.app.settings, wid, timeout=180)
    assert result["outcome"] == "automated", result
    assert result["sale"] == opp["sales"][0]  # the order Tryton made from the opportunity
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
    assert "IČO 26185610" in project["description"]
    with stack.tryton_client() as erp:
        notes = erp.search_read(
            "ir.note", [("resource", "=", f"sale.opportunity,{opportunity}")], ["message"]
        )
    assert any(result["project_url"] in n["message"] for n in notes), result
    assert handoff.poll_tryton_won().count(wid) == 1  # polled again: the same run, nothing new


def test_capacity_and_kpis_answer_over_the_api(stack: local.LocalStack) -> None:
    import httpx

    from spojka.governance import tokens

    crm = stack.crm_client()
    local.czech_deal(crm, suffix=_suffix(), amount="90000")  # open, 60 %
    with stack.app.sessions() as session:
        _, plain = tokens.create(session, name=f"viewer-{_suffix()}", role="viewer", actor="t")
        session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    forecast = httpx.get(f"{stack.api_url}/api/v1/capacity", headers=headers, timeout=60).json()
    assert forecast["weeks"] == 12
    assert forecast["problems"] == []
    assert {r["role"] for r in forecast["rows"]} >= {"konzultant", "vývojář"}
    assert sum(r["demand_h"] for r in forecast["rows"]) > 0
    kpis = httpx.get(f"{stack.api_url}/api/v1/kpi", headers=headers, timeout=60).json()
    handoffs = next(k for k in kpis if k["flow"] == "flows.handoff")
    assert handoffs["finished"] >= 1
    assert handoffs["median_s"] is not None
    metrics = httpx.get(f"{stack.api_url}/metrics", timeout=30).text
    assert 'spojka_flow_runs{flow="flows.handoff"}' in metrics


def test_change_requests_update_order_and_deal_value_after_the_limits_matrix(
    stack: local.LocalStack,
) -> None:
    crm = stack.crm_client()
    deal_id = local.czech_deal(crm, suffix=_suffix(), ico="47114983", dic="CZ47114983")
    local.win(crm, deal_id)
    result = _result(stack, deal_id)
    assert result["outcome"] == "automated", result
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
        trackers = {t["name"]: t["id"] for t in pm.get("/trackers.json")["trackers"]}
        fields = {f["name"]: f["id"] for f in pm.get("/custom_fields.json")["custom_fields"]}
        statuses = {s["name"]: s["id"] for s in pm.get("/issue_statuses.json")["issue_statuses"]}

        def change(subject: str, price: int, hours: int, status: str) -> int:
            issue = pm.create_issue(
                {
                    "project_id": project["id"],
                    "tracker_id": trackers["Change request"],
                    "subject": subject,
                    "custom_fields": [
                        {"id": fields["Cena (Kč)"], "value": str(price)},
                        {"id": fields["Odhad pracnosti (h)"], "value": str(hours)},
                    ],
                }
            )
            pm.update_issue(issue["id"], {"status_id": statuses[status]})
            return int(issue["id"])

        small = change("Export do Pohody", 8000, 5, "Closed")
        big = change("Napojení na e-shop", 60000, 40, "Closed")
        refused = change("Mobilní aplikace", 150000, 120, "Rejected")

    started = changes.poll_change_requests()
    assert {changes.workflow_id(i) for i in (small, big, refused)} <= set(started)
    settings = stack.app.settings
    assert engine.wait_result(settings, changes.workflow_id(refused), 60)["outcome"] == "rejected"
    auto = engine.wait_result(settings, changes.workflow_id(small), 120)
    assert auto["outcome"] == "automated", auto
    assert (auto["before"], auto["after"]) == ("240000.00", "248000.00")

    wid = changes.workflow_id(big)

    def pending() -> int | None:
        with stack.app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == wid:
                    return decision.id
        return None

    signal_decision(
        decision_id=wait_until("approval above the limit", pending),
        decision="approve",
        actor="reditel",
        role="approver",
    )
    approved = engine.wait_result(settings, wid, 120)
    assert approved["outcome"] == "approved", approved
    assert approved["after"] == "308000.00"
    assert crm.fetch("opportunities", deal_id)["amount"] == "308000.00"
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert sum("Hodnota obchodu změněna" in n for n in notes) == 2
    with stack.tryton_client() as erp:
        (supplement,) = erp.search_read(
            "sale.sale",
            [("comment", "like", f"%[spojka:change:{big}]%")],
            ["state", "untaxed_amount"],
        )
    assert supplement["state"] in ("confirmed", "processing")
    assert str(supplement["untaxed_amount"]) == "60000.00"
    assert changes.poll_change_requests().count(wid) == 1  # nothing new on the next poll
