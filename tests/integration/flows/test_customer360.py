"""Support tickets → CRM, time & material billing, payments back, and the Customer 360 —
against real BottleCRM, Tryton and Redmine (one set per module)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from decimal import Decimal
from typing import Any

import httpx
import pytest

from spojka.flows import handoff, links, local, payments, tickets, timesheets
from spojka.governance import tokens
from spojka.runtime import engine, runs
from spojka.runtime.flows import signal_decision
from tests.integration.flows.helpers import wait_until
from tests.support import cli_env, spojka_cli

pytestmark = [pytest.mark.flows, pytest.mark.crm, pytest.mark.tryton, pytest.mark.redmine]


def _suffix() -> str:
    return secrets.token_hex(3)


def _handed_off(stack: local.LocalStack, deal_id: str) -> dict[str, Any]:
    wid = handoff.workflow_id("bottlecrm", deal_id)

    def queued() -> bool:
        try:
            engine.status(stack.app.settings, wid)
        except Exception:
            return False
        return True

    wait_until(f"the handoff of {deal_id} was queued", queued)
    result: dict[str, Any] = engine.wait_result(stack.app.settings, wid, timeout=180)
    assert result["outcome"] == "automated", result
    return result


def _pending(stack: local.LocalStack, wid: str) -> int:
    def find() -> int | None:
        with stack.app.sessions() as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == wid:
                    return int(decision.id)
        return None

    found: int = wait_until(f"{wid} asks for a decision", find)
    return found


def _viewer(stack: local.LocalStack) -> dict[str, str]:
    with stack.app.sessions() as session:
        _, plain = tokens.create(session, name=f"viewer-{_suffix()}", role="viewer", actor="t")
        session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _account_task(stack: local.LocalStack, account_id: str, issue_id: int) -> list[dict[str, Any]]:
    detail = stack.crm_client().get(f"/api/accounts/{account_id}/")
    return [t for t in detail["tasks"] if f"[spojka:ticket:{issue_id}]" in t["title"]]


def _cli(stack: local.LocalStack, *args: str) -> Any:
    settings = stack.app.settings
    return spojka_cli(*args, env=cli_env(settings.data_dir, settings.resolved_database_url))


@pytest.fixture(scope="module")
def customer(stack: local.LocalStack) -> dict[str, Any]:
    """A won, handed-off deal of Strojírny Vysočina (IČO 25596641) and one more open deal."""
    crm = stack.crm_client()
    deal_id = local.czech_deal(crm, suffix=_suffix())
    local.win(crm, deal_id)
    result = _handed_off(stack, deal_id)
    account_id = str(crm.fetch("opportunities", deal_id)["account"]["id"])
    open_deal = crm.create(
        "opportunities",
        {
            "name": "Rozšíření licencí – Vysočina",
            "account": account_id,
            "amount": "36000",
            "currency": "EUR",
            "stage": "PROPOSAL",
            "probability": 40,
            "closed_on": "2027-03-31",
        },
    )
    with stack.app.engine.begin() as conn:
        canonical = links.canonical_for(conn, "ico", "account", "25596641")
    assert canonical is not None
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
    return {
        "deal": deal_id,
        "open_deal": open_deal,
        "account": account_id,
        "canonical": canonical,
        "project": project,
        "handoff": result,
    }


def test_support_tickets_become_tasks_on_the_account_with_sla_risk(
    stack: local.LocalStack, customer: dict[str, Any]
) -> None:
    project = customer["project"]
    with stack.redmine_client() as pm:
        trackers = {t["name"]: t["id"] for t in pm.get("/trackers.json")["trackers"]}
        statuses = {s["name"]: s["id"] for s in pm.get("/issue_statuses.json")["issue_statuses"]}
        issue = pm.create_issue(
            {
                "project_id": project["id"],
                "tracker_id": trackers["Support"],
                "subject": "Faktury se netisknou",
                "description": "Od rána nejde tisk faktur z modulu prodeje.",
            }
        )
    created = dt.datetime.fromisoformat(issue["created_on"].replace("Z", "+00:00"))

    started = tickets.poll_tickets()
    (wid,) = [w for w in started if w.startswith(f"ticket:redmine:{issue['id']}:")]
    first = engine.wait_result(stack.app.settings, wid, timeout=120)
    assert (first["outcome"], first["change"], first["risk"]) == ("automated", "created", "ok")
    (task,) = _account_task(stack, customer["account"], issue["id"])
    task = stack.crm_client().fetch("tasks", task["id"])
    assert task["title"].startswith(f"Podpora #{issue['id']}: Faktury se netisknou")
    assert task["status"] == "New"
    # The implementation template's SLA: a reaction within 8 hours.
    assert task["due_date"] == (created + dt.timedelta(hours=8)).date().isoformat()
    assert "termín response" in task["description"]
    assert "v pořádku / ok" in task["description"]
    assert f"/issues/{issue['id']}" in task["description"]

    # Polling again changes nothing.
    assert wid in tickets.poll_tickets()
    assert len(_account_task(stack, customer["account"], issue["id"])) == 1

    # Someone picks it up in Redmine: the same task follows.
    with stack.redmine_client() as pm:
        pm.update_issue(issue["id"], {"status_id": statuses["In Progress"]})
    moved = [w for w in tickets.poll_tickets() if w.startswith(f"ticket:redmine:{issue['id']}:")]
    assert moved != [wid]
    second = engine.wait_result(stack.app.settings, moved[0], timeout=120)
    assert second["change"] == "updated", second
    (task,) = _account_task(stack, customer["account"], issue["id"])
    task = stack.crm_client().fetch("tasks", task["id"])
    assert task["status"] == "In Progress"
    assert task["due_date"] == (created + dt.timedelta(hours=40)).date().isoformat()

    # 35 hours later, with 5 of the 40 resolution hours left, the ticket is at risk.
    later = created + dt.timedelta(hours=35)
    (risky,) = [
        w for w in tickets.poll_tickets(now=later) if w.startswith(f"ticket:redmine:{issue['id']}:")
    ]
    assert risky.endswith(":at_risk")
    assert engine.wait_result(stack.app.settings, risky, timeout=120)["risk"] == "at_risk"
    (task,) = _account_task(stack, customer["account"], issue["id"])
    task = stack.crm_client().fetch("tasks", task["id"])
    assert task["priority"] == "High"
    assert "hrozí překročení / at risk" in task["description"]


def test_customer_360_over_the_api_and_the_cli(
    stack: local.LocalStack, customer: dict[str, Any]
) -> None:
    with stack.redmine_client() as pm:
        trackers = {t["name"]: t["id"] for t in pm.get("/trackers.json")["trackers"]}
        ticket = pm.create_issue(
            {
                "project_id": customer["project"]["id"],
                "tracker_id": trackers["Support"],
                "subject": "Pomalé přihlášení",
            }
        )
        pm.log_time({"project_id": customer["project"]["id"], "hours": 18.4, "activity_id": 9})
    with stack.tryton_client() as erp:
        (eur,) = erp.search("currency.currency", [("code", "=", "EUR")], limit=1)
        (lead,) = erp.create(
            "sale.opportunity",
            [
                {
                    "party": customer["handoff"]["party"],
                    "company": erp.company_id,
                    "currency": eur,
                    "amount": Decimal("12000"),
                    "description": "Školení skladníků",
                    "employee": erp.employee_id,
                }
            ],
        )
    headers = _viewer(stack)
    answer = httpx.get(f"{stack.api_url}/api/v1/accounts/25596641/360", headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["account"]["id"] == customer["canonical"]
    assert view["account"]["ico"] == "25596641"
    assert view["account"]["name"].startswith("Strojírny Vysočina s.r.o.")
    assert {n: s["status"] for n, s in view["systems"].items()} == {
        "bottlecrm": "ok",
        "tryton": "ok",
        "redmine": "ok",
    }
    assert view["account"]["links"]["bottlecrm"].endswith(f"/accounts/{customer['account']}")
    assert view["account"]["links"]["tryton"].startswith("tryton://")

    # The won deal is no longer open; a lead kept in Tryton's own CRM is.
    deals = {d["system"]: d for d in view["deals"]}
    assert len(view["deals"]) == 2
    deal = deals["bottlecrm"]
    assert (deal["name"], deal["stage"], deal["amount"]) == (
        "Rozšíření licencí – Vysočina",
        "PROPOSAL",
        "36000.00",
    )
    assert deal["url"].endswith(f"/opportunities/{customer['open_deal']}")
    assert (deals["tryton"]["name"], deals["tryton"]["stage"]) == ("Školení skladníků", "lead")
    assert deals["tryton"]["url"].endswith(f"/model/sale.opportunity/{lead}")

    (project,) = view["projects"]
    assert project["identifier"] == customer["handoff"]["project"]
    assert project["status"] == "active"
    assert (project["hours_budget"], project["hours_spent"]) == ("184", "18.4")
    assert project["burn_pct"] == 10.0
    assert (project["money_budget"], project["currency"]) == ("240000.00", "EUR")
    assert (project["milestones_open"], project["milestones_closed"]) == (3, 0)
    assert project["url"].endswith(f"/projects/{customer['handoff']['project']}")

    shown = {t["id"]: t for t in view["tickets"]}
    assert shown[ticket["id"]]["risk"] == "ok"
    assert shown[ticket["id"]]["sla_kind"] == "response"
    assert 7.0 <= shown[ticket["id"]]["hours_left"] <= 8.0
    assert shown[ticket["id"]]["url"].endswith(f"/issues/{ticket['id']}")

    assert view["invoices"] == [] and view["receivables"] == []
    assert view["activities"], view
    assert all(a["url"] for a in view["activities"])
    assert any(
        a["system"] == "redmine" and "Pomalé přihlášení" in a["text"] for a in view["activities"]
    )
    assert any(a["system"] == "bottlecrm" and a["kind"] == "deal note" for a in view["activities"])

    # The canonical id answers the same customer.
    by_id = httpx.get(
        f"{stack.api_url}/api/v1/accounts/{customer['canonical']}/360", headers=headers, timeout=60
    ).json()
    assert by_id["account"]["ico"] == "25596641"
    assert [p["id"] for p in by_id["projects"]] == [project["id"]]

    table = _cli(stack, "account", "show", "25596641")
    assert table.returncode == 0, table.stderr
    assert "Strojírny Vysočina" in table.stdout
    assert "Rozšíření licencí" in table.stdout
    assert "18.4 / 184.0 h" in table.stdout and "10.0 %" in table.stdout
    assert "Pomalé přihlášení" in table.stdout
    as_json = _cli(stack, "account", "show", customer["canonical"], "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["account"]["ico"] == "25596641"


def test_unknown_customer_is_404_and_a_system_down_is_listed_as_unavailable(
    stack: local.LocalStack, customer: dict[str, Any]
) -> None:
    headers = _viewer(stack)
    missing = httpx.get(f"{stack.api_url}/api/v1/accounts/12345678/360", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "12345678" in missing.json()["detail"]
    denied = httpx.get(f"{stack.api_url}/api/v1/accounts/25596641/360")
    assert denied.status_code == 401

    unknown = _cli(stack, "account", "show", "nobody-like-this")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: no customer with id or IČO 'nobody-like-this'"

    stack.pm.kill()
    try:
        view = httpx.get(
            f"{stack.api_url}/api/v1/accounts/25596641/360", headers=headers, timeout=120
        ).json()
    finally:
        stack.pm.restart()
    assert view["systems"]["redmine"]["status"] == "unavailable"
    assert "unreachable" in view["systems"]["redmine"]["reason"]
    assert view["systems"]["bottlecrm"]["status"] == "ok"
    assert view["systems"]["tryton"]["status"] == "ok"
    assert view["projects"] == [] and view["tickets"] == []
    assert {d["name"] for d in view["deals"]} == {
        "Rozšíření licencí – Vysočina",
        "Školení skladníků",
    }


def test_time_and_material_month_is_invoiced_released_and_paid_back_to_deal_and_project(
    stack: local.LocalStack,
) -> None:
    crm = stack.crm_client()
    deal_id = local.czech_deal(
        crm,
        suffix=_suffix(),
        ico="27082440",
        dic="CZ27082440",
        name="Servisní podpora – Vysočina",
        product="Konzultace",
    )
    local.win(crm, deal_id)
    result = _handed_off(stack, deal_id)
    assert result["template"] == "podpora"
    last_month = dt.date.today().replace(day=1) - dt.timedelta(days=1)
    period = last_month.strftime("%Y-%m")
    with stack.redmine_client() as pm:
        project = pm.get(f"/projects/{result['project']}.json")["project"]
        activities = {a["name"]: a["id"] for a in pm.get(
            "/enumerations/time_entry_activities.json")["time_entry_activities"]}  # fmt: skip
        logged = [
            pm.log_time(
                {
                    "project_id": project["id"],
                    "hours": hours,
                    "activity_id": activities[activity],
                    "spent_on": last_month.replace(day=day).isoformat(),
                    "comments": text,
                }
            )["id"]
            for hours, activity, day, text in (
                (10, "Development", 3, "Úprava tiskových sestav"),
                (4.5, "Design", 10, "Návrh nového workflow schvalování"),
                (2, "Development", 20, "Oprava importu bank. výpisů"),
            )
        ]
        this_month = pm.log_time(
            {"project_id": project["id"], "hours": 3, "activity_id": activities["Development"]}
        )["id"]

    wid = timesheets.workflow_id(project["id"], period)
    assert wid in timesheets.poll_timesheets()
    decision = _pending(stack, wid)
    with stack.tryton_client() as erp:
        (draft,) = erp.search_read(
            "account.invoice",
            [("comment", "like", f"%[spojka:tm:{project['id']}:{period}]%")],
            ["state", "untaxed_amount", "tax_amount", "total_amount", "lines"],
        )
        lines = erp.read("account.invoice.line", draft["lines"], ["quantity", "unit_price"])
    assert draft["state"] == "draft"
    # Development 12 h × 1500 + Design 4.5 h × 1800 = 26 100, DPH 21 % = 5 481.
    assert sorted((ln["quantity"], str(ln["unit_price"])) for ln in lines) == [
        (4.5, "1800"),
        (12.0, "1500"),
    ]
    assert (str(draft["untaxed_amount"]), str(draft["tax_amount"])) == ("26100.00", "5481.00")

    signal_decision(decision_id=decision, decision="approve", actor="ucetni", role="approver")
    billed = engine.wait_result(stack.app.settings, wid, timeout=120)
    assert billed["outcome"] == "approved", billed
    assert billed["total"] == "31581.00" and billed["hours"] == "16.50"
    number = billed["number"]
    assert number.startswith("FV")

    with stack.redmine_client() as pm:
        entries = {
            e["id"]: e["custom_fields"][0]["value"]
            for e in pm.get("/time_entries.json", project_id=project["id"])["time_entries"]
        }
        ledger = pm.get(f"/projects/{project['id']}/wiki/Fakturace.json")["wiki_page"]["text"]
    assert {entries[i] for i in logged} == {f"faktura {number}"}
    assert entries[this_month] in (None, "")  # this month's time waits for its month end
    assert f"| {number} |" in ledger and "31581.00 EUR" in ledger
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert any(number in n and "31581.00 EUR" in n for n in notes)
    assert timesheets.poll_timesheets().count(wid) == 0  # nothing unbilled is left up to then

    # The customer pays 10 000 first, then the rest.
    with stack.tryton_client() as erp:
        local.pay_invoice(erp, billed["invoice"], Decimal("10000"))
    partial = payments.workflow_id(billed["invoice"], "partial", "21581.00")
    assert partial in payments.poll_payments()
    assert engine.wait_result(stack.app.settings, partial, timeout=120)["outcome"] == "automated"
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert any(number in n and "zbývá 21581.00 EUR" in n for n in notes)

    with stack.tryton_client() as erp:
        assert local.pay_invoice(erp, billed["invoice"])["state"] == "paid"
    paid = payments.workflow_id(billed["invoice"], "paid", "0")
    started = payments.poll_payments()
    assert paid in started and partial not in started
    assert engine.wait_result(stack.app.settings, paid, timeout=120)["payment"] == "paid"
    assert payments.poll_payments() == [paid]  # a re-poll starts nothing new
    notes = [c["comment"] for c in crm.comments("opportunities", deal_id)]
    assert sum(f"Faktura {number} uhrazena" in n for n in notes) == 1
    with stack.redmine_client() as pm:
        ledger = pm.get(f"/projects/{project['id']}/wiki/Fakturace.json")["wiki_page"]["text"]
    (row,) = [ln for ln in ledger.splitlines() if ln.startswith(f"| {number} |")]
    assert row.endswith("| uhrazena / paid |")

    view = httpx.get(
        f"{stack.api_url}/api/v1/accounts/27082440/360", headers=_viewer(stack), timeout=60
    ).json()
    (invoice,) = view["invoices"]
    assert (invoice["number"], invoice["payment"], invoice["to_pay"]) == (number, "paid", "0")
    (receivable,) = view["receivables"]
    assert (receivable["currency"], receivable["due"], receivable["dso_days"]) == ("EUR", "0", 0.0)
    assert view["projects"][0]["hours_spent"] == "19.5"
