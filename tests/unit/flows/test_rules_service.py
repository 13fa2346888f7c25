"""SLA risk of support tickets, time & material lines, payment states and DSO (pure rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from spojka.core.errors import ConfigError
from spojka.flows import config, rules

pytestmark = pytest.mark.flows

CREATED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _sla(status: str = "New", *, after_h: float, closed_after_h: float | None = None) -> str:
    state = rules.sla_state(
        created=CREATED,
        status=status,
        closed=None if closed_after_h is None else CREATED + timedelta(hours=closed_after_h),
        response_hours=8,
        resolution_hours=40,
        now=CREATED + timedelta(hours=after_h),
    )
    return state.risk


def test_a_new_ticket_runs_against_the_response_time() -> None:
    state = rules.sla_state(
        created=CREATED,
        status="New",
        closed=None,
        response_hours=8,
        resolution_hours=40,
        now=CREATED + timedelta(hours=3),
    )
    assert (state.kind, state.deadline, state.hours_left) == (
        "response",
        CREATED + timedelta(hours=8),
        5.0,
    )
    assert state.to_dict()["deadline"] == "2026-11-02T16:00+00:00"


@pytest.mark.parametrize(
    ("status", "after_h", "risk"),
    [
        ("New", 5.9, "ok"),  # 2.1 h of 8 left
        ("New", 6.5, "at_risk"),  # under a quarter of the window left
        ("New", 8.5, "breached"),
        ("In Progress", 8.5, "ok"),  # reacted: now the 40 h resolution counts
        ("In Progress", 31, "at_risk"),
        ("Feedback", 41, "breached"),
    ],
)
def test_risk_levels(status: str, after_h: float, risk: str) -> None:
    assert _sla(status, after_h=after_h) == risk


def test_a_closed_ticket_met_or_breached_its_resolution_time() -> None:
    assert _sla("Closed", after_h=100, closed_after_h=39) == "met"
    assert _sla("Closed", after_h=100, closed_after_h=41) == "breached"


def test_crm_task_status_follows_the_redmine_status() -> None:
    assert rules.crm_task_status("New", False) == "New"
    assert rules.crm_task_status("Feedback", False) == "In Progress"
    assert rules.crm_task_status("Rejected", True) == "Completed"


def test_time_entries_become_one_line_per_activity_at_its_rate() -> None:
    entries = [
        {"activity": "Development", "hours": "10"},
        {"activity": "Design", "hours": 4.5},
        {"activity": "Development", "hours": "2.25"},
        {"activity": "Testing", "hours": "1"},
    ]
    lines = rules.time_lines(
        entries,
        rates={"Design": Decimal(1800), "Development": Decimal(1500)},
        default_rate=Decimal(1200),
    )
    assert [(ln.activity, ln.hours, ln.rate, ln.amount) for ln in lines] == [
        ("Design", Decimal("4.50"), Decimal(1800), Decimal("8100.00")),
        ("Development", Decimal("12.25"), Decimal(1500), Decimal("18375.00")),
        ("Testing", Decimal("1.00"), Decimal(1200), Decimal("1200.00")),
    ]


def test_the_billable_month_is_the_one_before_today() -> None:
    assert rules.last_closed_month(date(2026, 11, 24)) == date(2026, 10, 31)
    assert rules.last_closed_month(date(2027, 1, 1)) == date(2026, 12, 31)
    assert rules.month_end(date(2028, 2, 10)) == date(2028, 2, 29)


def test_payment_state_overdue_and_dso() -> None:
    assert rules.payment_state("posted", Decimal(1210), Decimal(1210)) == "open"
    assert rules.payment_state("posted", Decimal(1210), Decimal(710)) == "partial"
    assert rules.payment_state("paid", Decimal(1210), Decimal(0)) == "paid"
    assert rules.payment_state("draft", Decimal(1210), Decimal(1210)) == "draft"
    today = date(2026, 11, 24)
    assert rules.overdue_days(date(2026, 11, 10), Decimal(5), today) == 14
    assert rules.overdue_days(date(2026, 11, 10), Decimal(0), today) == 0
    assert rules.overdue_days(date(2026, 12, 1), Decimal(5), today) == 0
    # Owes 30 000 of 90 000 invoiced in 90 days: 30 days of sales outstanding.
    assert (
        rules.dso_days(receivable=Decimal(30000), sales_in_window=Decimal(90000), window_days=90)
        == 30.0
    )
    assert (
        rules.dso_days(receivable=Decimal(10), sales_in_window=Decimal(0), window_days=90) is None
    )


def test_the_project_remembers_its_template_and_budget() -> None:
    cfg = config.parse(config.read_yaml(config.DEFAULTS))
    text = "Zákazník: X\nRozpočet: 184 h, 240000.00 EUR\nSLA: reakce 8 h\nŠablona: podpora\n"
    assert rules.template_of_project(text, cfg) == "podpora"
    assert rules.template_of_project("Šablona: neznámá", cfg) == cfg.default_template
    assert rules.template_of_project(None, cfg) == cfg.default_template
    assert rules.budget_of_project(text) == (Decimal(184), Decimal("240000.00"), "EUR")
    assert rules.budget_of_project("no budget") is None


def test_support_is_billed_by_the_hour_and_a_bad_rate_is_refused() -> None:
    data = config.read_yaml(config.DEFAULTS)
    cfg = config.parse(data)
    assert cfg.templates["podpora"].billing == "time_and_material"
    assert cfg.templates["implementace"].billing == "milestones"
    bad = config.merge(data, {"templates": {"podpora": {"rates": {"Design": "0"}}}})
    with pytest.raises(ConfigError, match="rate of 'Design' must be positive"):
        config.parse(bad)
