"""Customer 360: one customer across the CRM, the PM tool and the ERP, read live.

The customer is found through the link table (its canonical id, or its IČO), its records in
each system through the links the handoff wrote; every item carries a link to its record in its
own system. A system that cannot be reached is listed as unavailable with the reason, and the
rest of the view is still answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, Field

from spojka.bootstrap import current
from spojka.core.errors import NotFoundError, SpojkaError, TransientError
from spojka.core.logging import get_logger
from spojka.flows import links, rules, systems, tickets
from spojka.flows.config import FlowsConfig

log = get_logger("spojka.flows.customer360")

MAX_ACTIVITIES = 15


class SystemState(BaseModel):
    status: str = Field(description="ok | unavailable | not configured")
    reason: str | None = None


class AccountRef(BaseModel):
    id: str | None = Field(description="Spojka's canonical id of the customer")
    ico: str | None = None
    name: str | None = None
    links: dict[str, str] = Field(default_factory=dict, description="system → URL")


class Deal(BaseModel):
    system: str
    id: str
    name: str
    stage: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    probability: float | None = None
    url: str | None = None


class Project(BaseModel):
    id: str
    identifier: str | None = None
    name: str
    status: str = Field(description="active | closed | archived | cancelled")
    hours_budget: Decimal | None = None
    hours_spent: Decimal
    burn_pct: float | None = Field(None, description="spent / budgeted hours × 100")
    money_budget: Decimal | None = None
    currency: str | None = None
    milestones_open: int = 0
    milestones_closed: int = 0
    open_issues: int = 0
    url: str


class Ticket(BaseModel):
    id: int
    subject: str
    project: str | None = None
    status: str
    priority: str | None = None
    sla_kind: str
    sla_deadline: str
    hours_left: float
    risk: str = Field(description="ok | at_risk | breached")
    url: str


class Invoice(BaseModel):
    id: int
    number: str | None = None
    state: str = Field(description="Tryton's state: draft, validated, posted, paid, cancelled")
    payment: str = Field(description="open | partial | paid (or the draft state)")
    total: Decimal
    to_pay: Decimal
    currency: str | None = None
    invoice_date: dt.date | None = None
    due_date: dt.date | None = None
    overdue_days: int = 0
    url: str


class Receivables(BaseModel):
    currency: str | None
    due: Decimal = Field(description="still to pay on posted invoices")
    overdue: Decimal = Field(description="of that, past its due date")
    invoiced_in_window: Decimal
    dso_days: float | None = Field(description="due / invoiced in the window × window days")


class Activity(BaseModel):
    when: str | None = None
    system: str
    kind: str
    text: str
    url: str | None = None


class Customer360(BaseModel):
    account: AccountRef
    generated_at: dt.datetime
    systems: dict[str, SystemState]
    deals: list[Deal] = Field(default_factory=list, description="open deals")
    projects: list[Project] = Field(default_factory=list)
    tickets: list[Ticket] = Field(default_factory=list, description="open support tickets")
    invoices: list[Invoice] = Field(default_factory=list)
    receivables: list[Receivables] = Field(default_factory=list)
    dso_window_days: int
    activities: list[Activity] = Field(default_factory=list, description="newest first")


# -- finding the customer ----------------------------------------------------------------------


class _Customer:
    """What the link table (and, for an IČO not linked yet, Tryton) knows of one customer."""

    def __init__(self, canonical: str | None, linked: dict[str, str], ico: str | None) -> None:
        self.canonical = canonical
        self.linked = linked
        self.ico = ico or linked.get("ico/account")
        self.engagements: set[str] = set()


def _find(key: str, cfg: FlowsConfig) -> _Customer:
    key = key.strip()
    with current().engine.begin() as conn:
        canonical = None
        if key.isdigit() and len(key) == 8:
            canonical = links.canonical_for(conn, "ico", "account", key)
        else:
            linked = links.linked(conn, key)
            if "ico/account" in linked:
                canonical = key
            elif linked:
                canonical = links.account_of(conn, key)  # an engagement's id: its customer
        if canonical is not None:
            customer = _Customer(canonical, links.linked(conn, canonical), None)
            customer.engagements.update(links.engagements_of(conn, canonical))
            return customer
    if key.isdigit() and len(key) == 8 and cfg.systems.tryton is not None:
        # A customer Spojka has not linked yet may still be in the ERP.
        try:
            party = systems.TrytonErp(systems.tryton(cfg)).party_by_ico(key)
        except SpojkaError as exc:
            raise TransientError(f"customer {key} is not linked and Tryton: {exc.message}") from exc
        if party is not None:
            return _Customer(None, {"tryton/party": str(party)}, key)
    raise NotFoundError(f"no customer with id or IČO {key!r}")


# -- per system ------------------------------------------------------------------------------


def _when(value: Any) -> str | None:
    """A timestamp as ``YYYY-MM-DDTHH:MM`` UTC (a date stays a date), so they sort together."""
    if not value:
        return None
    text = str(value)
    if len(text) == 10:
        return text
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M")


def _note_time(row: dict[str, Any]) -> str | None:
    for name in ("commented_on", "created_at", "created_on", "updated_at"):
        if row.get(name):
            return _when(row[name])
    return None


def _crm_side(view: Customer360, customer: _Customer, cfg: FlowsConfig) -> None:
    account_id = customer.linked.get("bottlecrm/account")
    if account_id is None:
        view.systems["bottlecrm"] = SystemState(
            status="not linked", reason="no BottleCRM account linked to this customer"
        )
        return
    side = systems.BottleCrm(systems.bottlecrm(cfg), systems._ref(cfg, "bottlecrm").url)
    detail = side.account_detail(account_id)
    account = detail.get("account_obj") or {}
    view.account.name = view.account.name or account.get("name")
    view.account.links["bottlecrm"] = side.url("accounts", account_id)
    with current().engine.begin() as conn:
        for opp in detail.get("opportunity_list") or []:
            engagement = links.canonical_for(conn, "bottlecrm", "opportunity", str(opp["id"]))
            if engagement:
                customer.engagements.add(engagement)
    for opp in detail.get("opportunity_list") or []:
        url = side.url("opportunities", str(opp["id"]))
        if not str(opp.get("stage") or "").startswith("CLOSED"):
            view.deals.append(
                Deal(
                    system="bottlecrm",
                    id=str(opp["id"]),
                    name=str(opp.get("name") or ""),
                    stage=opp.get("stage"),
                    amount=systems._dec(opp.get("amount")),
                    currency=opp.get("currency"),
                    probability=float(opp["probability"])
                    if opp.get("probability") is not None
                    else None,
                    url=url,
                )
            )
        for note in side.client.comments("opportunities", str(opp["id"]))[:5]:
            view.activities.append(
                Activity(
                    when=_note_time(note),
                    system="bottlecrm",
                    kind="deal note",
                    text=f"{opp.get('name')}: {_first_line(note.get('comment'))}",
                    url=url,
                )
            )
    for note in (detail.get("comments") or [])[:5]:
        view.activities.append(
            Activity(
                when=_note_time(note),
                system="bottlecrm",
                kind="account note",
                text=_first_line(note.get("comment")),
                url=view.account.links["bottlecrm"],
            )
        )
    for task in detail.get("tasks") or []:
        view.activities.append(
            Activity(
                when=_note_time(task),
                system="bottlecrm",
                kind=f"task ({task.get('status')})",
                text=str(task.get("title") or ""),
                url=side.url("tasks", str(task["id"])),
            )
        )


def _tryton_crm_side(view: Customer360, customer: _Customer, cfg: FlowsConfig) -> None:
    party = customer.linked.get("tryton/party")
    if party is None:
        return
    client = systems.tryton(cfg)
    side = systems.TrytonCrm(client, cfg.people.account_owner_fallback)
    erp = systems.TrytonErp(client)
    with current().engine.begin() as conn:
        for opp in side.deals_of(int(party)):
            engagement = links.canonical_for(conn, "tryton", "opportunity", str(opp["id"]))
            if engagement:
                customer.engagements.add(engagement)
            if opp.get("state") in ("lead", "opportunity"):
                view.deals.append(
                    Deal(
                        system="tryton",
                        id=str(opp["id"]),
                        name=str(opp.get("description") or f"#{opp['id']}"),
                        stage=opp.get("state"),
                        amount=systems._dec(opp.get("amount")),
                        currency=(opp.get("currency.") or {}).get("code"),
                        probability=float(opp.get("conversion_probability") or 0) * 100,
                        url=erp.url("sale.opportunity", opp["id"]),
                    )
                )


def _erp_side(view: Customer360, customer: _Customer, cfg: FlowsConfig, today: dt.date) -> None:
    erp = systems.TrytonErp(systems.tryton(cfg))
    party = customer.linked.get("tryton/party")
    if party is None and customer.ico:
        found = erp.party_by_ico(customer.ico)
        party = str(found) if found is not None else None
    if party is None:
        view.systems["tryton"] = SystemState(
            status="not linked", reason="no Tryton party for this customer"
        )
        return
    customer.linked["tryton/party"] = party
    (row,) = erp.client.read("party.party", [int(party)], ["name"])
    view.account.name = view.account.name or row.get("name")
    view.account.links["tryton"] = erp.url("party.party", party)
    # Tryton's own opportunities count as deals too (companies that sell from the ERP).
    _tryton_crm_side(view, customer, cfg)
    with current().engine.begin() as conn:
        for sale in erp.client.search("sale.sale", [("party", "=", int(party))], limit=200):
            engagement = links.canonical_for(conn, "tryton", "sale", str(sale))
            if engagement:
                customer.engagements.add(engagement)
    window_start = today - dt.timedelta(days=cfg.limits.dso_window_days)
    totals: dict[str | None, dict[str, Decimal]] = {}
    for inv in erp.customer_invoices([("party", "=", int(party)), ("state", "!=", "cancelled")]):
        payment = rules.payment_state(str(inv["state"]), inv["total"], inv["to_pay"])
        view.invoices.append(
            Invoice(
                id=inv["id"],
                number=inv["number"],
                state=str(inv["state"]),
                payment=payment,
                total=inv["total"],
                to_pay=inv["to_pay"],
                currency=inv["currency"],
                invoice_date=inv["invoice_date"],
                due_date=inv["due_date"],
                overdue_days=rules.overdue_days(inv["due_date"], inv["to_pay"], today)
                if inv["state"] == "posted"
                else 0,
                url=inv["url"],
            )
        )
        if inv["state"] not in ("posted", "paid"):
            continue  # drafts are not receivables yet
        sums = totals.setdefault(
            inv["currency"], {"due": Decimal(0), "overdue": Decimal(0), "window": Decimal(0)}
        )
        sums["due"] += inv["to_pay"]
        if view.invoices[-1].overdue_days:
            sums["overdue"] += inv["to_pay"]
        if inv["invoice_date"] and inv["invoice_date"] >= window_start:
            sums["window"] += inv["total"]
        view.activities.append(
            Activity(
                when=inv["invoice_date"].isoformat() if inv["invoice_date"] else None,
                system="tryton",
                kind=f"invoice ({payment})",
                text=f"{inv['number']}: {inv['total']} {inv['currency']}",
                url=inv["url"],
            )
        )
    for currency, sums in sorted(totals.items(), key=lambda kv: str(kv[0])):
        view.receivables.append(
            Receivables(
                currency=currency,
                due=sums["due"],
                overdue=sums["overdue"],
                invoiced_in_window=sums["window"],
                dso_days=rules.dso_days(
                    receivable=sums["due"],
                    sales_in_window=sums["window"],
                    window_days=cfg.limits.dso_window_days,
                ),
            )
        )


def _project_status(project: dict[str, Any]) -> str:
    if str(project.get("name", "")).startswith("[ZRUŠENO]"):
        return "cancelled"
    return {1: "active", 5: "closed", 9: "archived"}.get(int(project.get("status") or 1), "active")


def _pm_side(view: Customer360, customer: _Customer, cfg: FlowsConfig, now: dt.datetime) -> None:
    pm = systems.RedminePm(systems.redmine(cfg))
    with current().engine.begin() as conn:
        project_ids = sorted(
            {
                p
                for e in customer.engagements
                if (p := links.linked(conn, e).get("redmine/project"))
            },
            key=int,
        )
    for project_id in project_ids:
        project = pm.project(project_id)
        if project is None:
            continue
        identifier = str(project.get("identifier") or project_id)
        url = pm.url(f"projects/{identifier}")
        issues = list(
            pm.client.iter_all("/issues.json", "issues", project_id=project_id, status_id="*")
        )
        estimated = sum(
            (Decimal(str(i.get("estimated_hours") or 0)) for i in issues if not i.get("parent")),
            Decimal(0),
        )
        spent = sum(
            (
                Decimal(str(e.get("hours") or 0))
                for e in pm.client.iter_all(
                    "/time_entries.json", "time_entries", project_id=project_id
                )
            ),
            Decimal(0),
        )
        budget = rules.budget_of_project(project.get("description"))
        hours_budget = budget[0] if budget else (estimated or None)
        versions = pm.client.get(f"/projects/{project_id}/versions.json")["versions"]
        view.projects.append(
            Project(
                id=str(project_id),
                identifier=identifier,
                name=str(project.get("name") or ""),
                status=_project_status(project),
                hours_budget=hours_budget,
                hours_spent=spent,
                burn_pct=round(float(spent / hours_budget) * 100, 1) if hours_budget else None,
                money_budget=budget[1] if budget else None,
                currency=budget[2] if budget else None,
                milestones_open=sum(1 for v in versions if v.get("status") != "closed"),
                milestones_closed=sum(1 for v in versions if v.get("status") == "closed"),
                open_issues=sum(1 for i in issues if not (i.get("status") or {}).get("is_closed")),
                url=url,
            )
        )
        template = rules.template_of_project(project.get("description"), cfg)
        for issue in issues:
            issue_url = pm.url(f"issues/{issue['id']}")
            view.activities.append(
                Activity(
                    when=_when(issue.get("updated_on")),
                    system="redmine",
                    kind=f"{(issue.get('tracker') or {}).get('name')} "
                    f"({(issue.get('status') or {}).get('name')})",
                    text=f"#{issue['id']} {issue.get('subject')}",
                    url=issue_url,
                )
            )
            tracker = (issue.get("tracker") or {}).get("name")
            if tracker != tickets.TRACKER or (issue.get("status") or {}).get("is_closed"):
                continue
            ticket = tickets.snapshot(issue, cfg=cfg, template=template, url=issue_url, now=now)
            view.tickets.append(
                Ticket(
                    id=ticket["id"],
                    subject=ticket["subject"],
                    project=ticket["project"],
                    status=ticket["status"],
                    priority=ticket["priority"],
                    sla_kind=ticket["sla"]["kind"],
                    sla_deadline=ticket["sla"]["deadline"],
                    hours_left=ticket["sla"]["hours_left"],
                    risk=ticket["sla"]["risk"],
                    url=issue_url,
                )
            )


def _first_line(text: Any, limit: int = 160) -> str:
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


# -- the view ------------------------------------------------------------------------------


def _guard(view: Customer360, name: str, fn: Callable[[], None]) -> None:
    """Run one system's part; its failure marks that system unavailable, nothing more."""
    try:
        fn()
    except (SpojkaError, httpx.HTTPError) as exc:
        reason = exc.message if isinstance(exc, SpojkaError) else f"{type(exc).__name__}: {exc}"
        log.info("customer360.system_unavailable", system=name, reason=reason)
        view.systems[name] = SystemState(status="unavailable", reason=reason)
        return
    view.systems.setdefault(name, SystemState(status="ok"))


def build(key: str, *, now: dt.datetime | None = None) -> Customer360:
    """The Customer 360 of the customer with canonical id or IČO ``key`` (NotFoundError if
    nobody has it)."""
    cfg = systems.config()
    now = now or dt.datetime.now(dt.UTC)
    today = cfg.today or now.date()
    customer = _find(key, cfg)
    view = Customer360(
        account=AccountRef(id=customer.canonical, ico=customer.ico),
        generated_at=now,
        systems={},
        dso_window_days=cfg.limits.dso_window_days,
    )
    for name in ("bottlecrm", "tryton", "redmine"):
        if getattr(cfg.systems, name) is None:
            view.systems[name] = SystemState(status="not configured")
    parts: list[tuple[str, Callable[[], None]]] = []
    if cfg.systems.tryton is not None:
        parts.append(("tryton", lambda: _erp_side(view, customer, cfg, today)))
    if cfg.systems.bottlecrm is not None:
        parts.append(("bottlecrm", lambda: _crm_side(view, customer, cfg)))
    # The CRM and the ERP are read side by side; both add the engagements the PM part needs.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="c360") as pool:
        for future in [pool.submit(_guard, view, name, fn) for name, fn in parts]:
            future.result()
    if cfg.systems.redmine is not None:
        _guard(view, "redmine", lambda: _pm_side(view, customer, cfg, now))
    view.deals.sort(key=lambda d: (d.system, d.name))
    view.activities.sort(key=lambda a: a.when or "", reverse=True)
    del view.activities[MAX_ACTIVITIES:]
    view.tickets.sort(key=lambda t: t.hours_left)
    return view
