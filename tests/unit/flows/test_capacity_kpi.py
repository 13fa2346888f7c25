"""Capacity from the weighted pipeline and KPIs from run records (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from spojka.flows import config
from spojka.insights import capacity, kpi

pytestmark = pytest.mark.flows


@pytest.fixture
def cfg() -> config.FlowsConfig:
    return config.parse(config.read_yaml(config.DEFAULTS))


def test_a_weighted_deal_spreads_its_role_hours_over_the_weeks(cfg: config.FlowsConfig) -> None:
    demands = capacity.deal_demands(
        config=cfg,
        template="skoleni",
        amount=Decimal("24000"),
        probability=0.5,
        start=date(2026, 11, 30),
        source="d1",
    )
    assert [(d.role, d.hours, d.weight) for d in demands] == [("konzultant", 20.0, 0.5)]
    rows = capacity.forecast(demands, cfg.capacity, start=date(2026, 11, 30), weeks=3)
    consultant = [r for r in rows if r.role == "konzultant"]
    assert [r.demand for r in consultant] == [5.0, 5.0, 0.0]
    assert consultant[0].capacity == 64.0
    assert not any(r.over for r in rows)


def test_over_allocation_is_flagged_per_role_and_week(cfg: config.FlowsConfig) -> None:
    booked = [capacity.Demand("vývojář", 300.0, date(2026, 11, 30), date(2026, 12, 6))]
    rows = capacity.forecast(booked, cfg.capacity, start=date(2026, 12, 2), weeks=12)
    assert len(rows) == 12 * 3
    over = [r for r in rows if r.over]
    assert [(r.week, r.role) for r in over] == [(date(2026, 11, 30), "vývojář")]
    table = capacity.as_table(rows)
    assert table[0]["week"] == "2026-11-30"


def test_kpis_from_run_records() -> None:
    rows = [
        ("flows.handoff", "automated", 0.0, {"lead_time_s": 10.0}),
        ("flows.handoff", "approved", 120.0, {"lead_time_s": 30.0}),
        ("flows.handoff", "failed", 0.0, {"error": "USD"}),
        ("flows.handoff", "waiting", 0.0, None),
        ("flows.billing", "approved", 60.0, {"time_to_invoice_s": 5.0}),
        ("demo.customer_onboarding", "automated", 0.0, None),
    ]
    by_flow = {k.flow: k for k in kpi.compute(rows)}
    handoff = by_flow["flows.handoff"]
    assert (handoff.runs, handoff.finished, handoff.waiting) == (4, 3, 1)
    assert handoff.without_human == pytest.approx(1 / 3)
    assert handoff.failure_rate == pytest.approx(1 / 3)
    assert handoff.median_s == 20.0
    assert by_flow["flows.billing"].median_s == 5.0
    assert by_flow["flows.change_request"].runs == 0
