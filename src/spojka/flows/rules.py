"""Pure rules of the quote-to-cash flows: pre-flight checks, template choice, project plan,
invoice lines, approval limits. No HTTP and no database: plain values in, plain values out.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stdnum.cz import dic as cz_dic
from stdnum.sk import dph as sk_dph

from spojka.flows.config import FlowsConfig, ProjectTemplate

CENT = Decimal("0.01")


@dataclass
class DealLine:
    name: str
    quantity: Decimal
    unit_price: Decimal


@dataclass
class Deal:
    """A won opportunity as the flows see it, whichever CRM it came from."""

    source: str  # "bottlecrm" | "tryton"
    id: str
    name: str
    stage_won: bool
    account_id: str | None = None
    account_name: str | None = None
    ico: str | None = None
    dic: str | None = None
    account_blocked: bool = False
    contact_name: str | None = None
    contact_email: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    expected_start: date | None = None
    opportunity_type: str | None = None
    owner_email: str | None = None
    lines: list[DealLine] = field(default_factory=list)
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["amount"] = None if self.amount is None else str(self.amount)
        data["expected_start"] = self.expected_start.isoformat() if self.expected_start else None
        data["lines"] = [
            {"name": ln.name, "quantity": str(ln.quantity), "unit_price": str(ln.unit_price)}
            for ln in self.lines
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deal:
        values = dict(data)
        values["amount"] = None if data.get("amount") is None else Decimal(str(data["amount"]))
        start = data.get("expected_start")
        values["expected_start"] = date.fromisoformat(start) if start else None
        values["lines"] = [
            DealLine(ln["name"], Decimal(str(ln["quantity"])), Decimal(str(ln["unit_price"])))
            for ln in data.get("lines") or []
        ]
        return cls(**values)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.id}"


def valid_ico(value: str | None) -> bool:
    """A Czech/Slovak IČO: eight digits with a correct check digit."""
    text = (value or "").strip().replace(" ", "")
    return len(text) == 8 and text.isdigit() and cz_dic.is_valid(text)


def valid_dic(value: str | None) -> bool:
    text = (value or "").strip().replace(" ", "").upper()
    if text.startswith("CZ"):
        return cz_dic.is_valid(text)
    if text.startswith("SK"):
        return sk_dph.is_valid(text)
    return False


_FIELD = re.compile(
    r"(?P<key>IČO|ICO|IČ|DIČ|DIC|IČ DPH|Zahájení|Start)\s*[:=]\s*(?P<value>[A-Za-z0-9\-]+)",
    re.IGNORECASE,
)


def fields_from_notes(text: str | None) -> dict[str, str]:
    """IČO, DIČ and the expected start written as ``IČO: 25596641`` lines in a CRM note.

    BottleCRM has no field for Czech identifiers, so companies keep them in the account's
    notes; this reads them back.
    """
    found: dict[str, str] = {}
    for match in _FIELD.finditer(text or ""):
        key = unicodedata.normalize("NFKD", match.group("key").upper())
        key = "".join(c for c in key if not unicodedata.combining(c))
        value = match.group("value").strip()
        if key in ("ICO", "IC"):
            found.setdefault("ico", value)
        elif key in ("DIC", "IC DPH"):
            found.setdefault("dic", value.upper())
        elif key in ("ZAHAJENI", "START"):
            found.setdefault("expected_start", value)
    return found


def preflight(
    deal: Deal,
    *,
    config: FlowsConfig,
    linked_project: str | None,
    overdue: Decimal | None = None,
) -> list[str]:
    """Every reason the handoff cannot start yet, in words the deal owner understands."""
    problems: list[str] = []
    if not deal.stage_won:
        problems.append("obchod není ve stavu Vyhráno / the deal is not won")
    if not deal.account_name:
        problems.append("chybí zákazník / no customer on the deal")
    if not deal.ico:
        problems.append("zákazník nemá IČO / the customer has no IČO (add 'IČO: …' to its notes)")
    elif not valid_ico(deal.ico):
        problems.append(f"IČO {deal.ico!r} není platné / has a wrong check digit")
    if deal.dic and not valid_dic(deal.dic):
        problems.append(f"DIČ {deal.dic!r} není platné / is not a valid CZ/SK VAT id")
    if not (deal.contact_name or deal.contact_email):
        problems.append("chybí kontaktní osoba / no contact person on the deal")
    if deal.amount is None or deal.amount <= 0:
        problems.append("chybí částka / the deal has no amount")
    elif deal.amount < config.limits.min_deal_amount:
        problems.append(
            f"částka {deal.amount} je pod minimem {config.limits.min_deal_amount} / below minimum"
        )
    if not deal.currency:
        problems.append("chybí měna / no currency")
    if deal.expected_start is None:
        problems.append("chybí předpokládané zahájení / no expected start date")
    if not deal.lines and not deal.opportunity_type:
        problems.append("chybí rozsah (produkty nebo typ obchodu) / no scope: products or type")
    if not deal.owner_email:
        problems.append("obchod nemá vlastníka / the deal has no owner")
    if deal.account_blocked:
        problems.append("zákazník je blokován / the customer is blocked")
    if overdue is not None and overdue > config.limits.overdue_block_amount:
        problems.append(f"zákazník má po splatnosti {overdue} / the customer has overdue debt")
    if linked_project:
        problems.append(f"obchod už má projekt {linked_project} / a project is already linked")
    return problems


def choose_template(deal: Deal, config: FlowsConfig) -> str:
    """Template by product keywords first, then by deal type, else the company's default."""
    text = " ".join([deal.name, *(ln.name for ln in deal.lines)]).lower()
    for name, template in config.templates.items():
        if any(word.lower() in text for word in template.keywords):
            return name
    for name, template in config.templates.items():
        if deal.opportunity_type and deal.opportunity_type in template.opportunity_types:
            return name
    return config.default_template


def project_identifier(deal: Deal) -> str:
    """Redmine's project identifier: stable per deal (a retried create finds it)."""
    digest = hashlib.sha1(deal.key.encode()).hexdigest()[:10]
    return f"z-{digest}"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class PlannedMilestone:
    name: str
    due_date: date
    amount: Decimal


@dataclass
class PlannedTask:
    subject: str
    hours: Decimal
    milestone: str
    role: str


@dataclass
class ProjectPlan:
    identifier: str
    name: str
    template: str
    description: str
    milestones: list[PlannedMilestone]
    tasks: list[PlannedTask]
    budget_hours: Decimal
    budget_money: Decimal
    currency: str
    sla_response_hours: int
    sla_resolution_hours: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "name": self.name,
            "template": self.template,
            "description": self.description,
            "milestones": [
                {"name": m.name, "due_date": m.due_date.isoformat(), "amount": str(m.amount)}
                for m in self.milestones
            ],
            "tasks": [
                {
                    "subject": t.subject,
                    "hours": str(t.hours),
                    "milestone": t.milestone,
                    "role": t.role,
                }
                for t in self.tasks
            ],
            "budget_hours": str(self.budget_hours),
            "budget_money": str(self.budget_money),
            "currency": self.currency,
            "sla_response_hours": self.sla_response_hours,
            "sla_resolution_hours": self.sla_resolution_hours,
        }


def split_amount(total: Decimal, shares: list[Decimal]) -> list[Decimal]:
    """Billing amounts per milestone that add up to the total exactly (last takes the rest)."""
    amounts = [money(total * share) for share in shares[:-1]]
    amounts.append(money(total) - sum(amounts, Decimal(0)))
    return amounts


def plan_project(deal: Deal, template_name: str, config: FlowsConfig) -> ProjectPlan:
    """The project a won deal becomes: milestones with dates and amounts, WBS, budget, SLA."""
    template: ProjectTemplate = config.templates[template_name]
    assert deal.amount is not None and deal.expected_start is not None and deal.currency
    amounts = split_amount(deal.amount, [m.share for m in template.milestones])
    milestones = [
        PlannedMilestone(m.name, deal.expected_start + timedelta(days=m.offset_days), amount)
        for m, amount in zip(template.milestones, amounts, strict=True)
    ]
    tasks = [PlannedTask(t.subject, t.hours, t.milestone, t.role) for t in template.wbs]
    hours = sum((t.hours for t in tasks), Decimal(0))
    scope = "\n".join(f"- {ln.name}: {ln.quantity} × {ln.unit_price}" for ln in deal.lines)
    description = "\n".join(
        [
            f"Zákazník: {deal.account_name} (IČO {deal.ico}"
            + (f", DIČ {deal.dic})" if deal.dic else ")"),
            f"Obchod: {deal.name} ({deal.source} {deal.id})",
            f"Rozpočet: {hours} h, {money(deal.amount)} {deal.currency}",
            f"SLA: reakce {template.sla.response_hours} h, "
            f"vyřešení {template.sla.resolution_hours} h",
            f"Šablona: {template_name}",
            f"Kontakt: {deal.contact_name or ''} {deal.contact_email or ''}".rstrip(),
            f"Obchodník: {deal.owner_email}",
            "Rozsah:",
            scope or f"- {template.title}",
        ]
    )
    return ProjectPlan(
        identifier=project_identifier(deal),
        name=f"{deal.account_name} – {deal.name}"[:250],
        template=template_name,
        description=description,
        milestones=milestones,
        tasks=tasks,
        budget_hours=hours,
        budget_money=money(deal.amount),
        currency=deal.currency,
        sla_response_hours=template.sla.response_hours,
        sla_resolution_hours=template.sla.resolution_hours,
    )


def milestone_amount(description: str | None) -> Decimal | None:
    """The billing amount Spojka wrote into a Redmine version's description."""
    match = re.search(r"Fakturace:\s*([0-9]+(?:\.[0-9]+)?)", description or "")
    return Decimal(match.group(1)) if match else None


def vat(amount: Decimal, percent: Decimal) -> Decimal:
    return money(amount * percent / 100)


def needs_approval(amount: Decimal, limit: Decimal) -> bool:
    """The limits matrix: anything above the limit waits for a person."""
    return amount > limit


def lead_time_seconds(won_at: float | None, ready_at: float) -> float | None:
    if won_at is None:
        return None
    return max(0.0, ready_at - won_at)


# -- templates recorded on the project --------------------------------------------------------

_TEMPLATE_LINE = re.compile(r"^Šablona:\s*(?P<name>\S+)", re.MULTILINE)
_BUDGET_LINE = re.compile(
    r"^Rozpočet:\s*(?P<hours>[0-9.]+)\s*h,\s*(?P<money>[0-9.]+)\s*(?P<currency>[A-Z]{3})",
    re.MULTILINE,
)


def template_of_project(description: str | None, config: FlowsConfig) -> str:
    """The template a project was planned from (its ``Šablona:`` line), else the default."""
    match = _TEMPLATE_LINE.search(description or "")
    name = match.group("name") if match else None
    return name if name in config.templates else config.default_template


def budget_of_project(description: str | None) -> tuple[Decimal, Decimal, str] | None:
    """Hours, money and currency from the ``Rozpočet:`` line the handoff wrote."""
    match = _BUDGET_LINE.search(description or "")
    if match is None:
        return None
    return Decimal(match.group("hours")), Decimal(match.group("money")), match.group("currency")


# -- service tickets: SLA ---------------------------------------------------------------------


@dataclass(frozen=True)
class SlaState:
    """Where one ticket stands against its SLA."""

    kind: str  # "response" (nobody reacted yet) | "resolution"
    deadline: datetime
    hours_left: float  # negative once breached; for a closed ticket: margin at closing
    risk: str  # "ok" | "at_risk" | "breached" | "met"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "deadline": self.deadline.isoformat(timespec="minutes"),
            "hours_left": round(self.hours_left, 1),
            "risk": self.risk,
        }


def sla_state(
    *,
    created: datetime,
    status: str,
    closed: datetime | None,
    response_hours: int,
    resolution_hours: int,
    now: datetime,
    at_risk_share: Decimal = Decimal("0.25"),
) -> SlaState:
    """SLA of a ticket in calendar hours: a ``New`` ticket runs against the response time,
    any other against the resolution time; at risk when less than ``at_risk_share`` of the
    window is left, breached past the deadline."""
    if closed is not None:
        deadline = created + timedelta(hours=resolution_hours)
        margin = (deadline - closed).total_seconds() / 3600
        return SlaState("resolution", deadline, margin, "met" if margin >= 0 else "breached")
    kind, window = (
        ("response", response_hours) if status == "New" else ("resolution", resolution_hours)
    )
    deadline = created + timedelta(hours=window)
    left = (deadline - now).total_seconds() / 3600
    if left < 0:
        risk = "breached"
    elif left < float(at_risk_share) * window:
        risk = "at_risk"
    else:
        risk = "ok"
    return SlaState(kind, deadline, left, risk)


def crm_task_status(status: str, is_closed: bool) -> str:
    """BottleCRM's task status for a Redmine issue status."""
    if is_closed:
        return "Completed"
    return "New" if status == "New" else "In Progress"


# -- time & material -------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeLine:
    """One invoice line of a time & material bill: an activity's hours at its rate."""

    activity: str
    hours: Decimal
    rate: Decimal

    @property
    def amount(self) -> Decimal:
        return money(self.hours * self.rate)

    def to_dict(self) -> dict[str, str]:
        return {
            "activity": self.activity,
            "hours": str(self.hours),
            "rate": str(self.rate),
            "amount": str(self.amount),
        }


def time_lines(
    entries: list[dict[str, Any]], *, rates: dict[str, Decimal], default_rate: Decimal
) -> list[TimeLine]:
    """Time entries summed per activity (sorted by name), each at its activity's rate."""
    hours: dict[str, Decimal] = {}
    for entry in entries:
        activity = str(entry.get("activity") or "?")
        hours[activity] = hours.get(activity, Decimal(0)) + Decimal(str(entry["hours"]))
    return [
        TimeLine(name, total.quantize(CENT), rates.get(name, default_rate))
        for name, total in sorted(hours.items())
        if total > 0
    ]


def month_end(day: date) -> date:
    first_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first_next - timedelta(days=1)


def last_closed_month(today: date) -> date:
    """The last day of the month before ``today``'s: time entries up to it are billable."""
    return today.replace(day=1) - timedelta(days=1)


# -- receivables -----------------------------------------------------------------------------


def payment_state(state: str, total: Decimal, to_pay: Decimal) -> str:
    """``paid`` / ``partial`` / ``open`` (or Tryton's own state for drafts and cancels)."""
    if state == "paid" or (state == "posted" and to_pay <= 0):
        return "paid"
    if state == "posted":
        return "partial" if to_pay < total else "open"
    return state


def overdue_days(due: date | None, to_pay: Decimal, today: date) -> int:
    if due is None or to_pay <= 0 or due >= today:
        return 0
    return (today - due).days


def dso_days(*, receivable: Decimal, sales_in_window: Decimal, window_days: int) -> float | None:
    """Days sales outstanding: what the customer owes now over what it was invoiced in the
    window, times the window's days (None without sales in the window)."""
    if sales_in_window <= 0:
        return None
    return round(float(receivable / sales_in_window) * window_days, 1)
