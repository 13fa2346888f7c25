from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from spojka.cli.main import app
from spojka.core.errors import ValidationError
from spojka.insights.roi import MeasuredRuns, RoiInputs, compute_roi, inputs_from_runs, parse_period

REFERENCE = RoiInputs(
    volume=Decimal(10_000),
    minutes=Decimal(5),
    automation=Decimal("0.8"),
    rate=Decimal(400),
    operation_cost=Decimal(50_000),
    exceptions_cost=Decimal(40_000),
    licence_cost=Decimal(10_000),
    investment=Decimal(400_000),
)


def test_reference_example() -> None:
    result = compute_roi(REFERENCE)
    assert result.manual_hours == 833
    assert result.saved_hours == 666
    assert result.gross_benefit == Decimal(266_400)
    assert result.net_benefit == Decimal(166_400)
    assert result.payback_months == Decimal("2.40")


def test_automation_as_percentage_means_the_same() -> None:
    pct = RoiInputs(**{**REFERENCE.__dict__, "automation": Decimal(80)})
    assert compute_roi(pct) == compute_roi(REFERENCE)


def test_no_payback_when_costs_eat_the_benefit() -> None:
    costly = RoiInputs(**{**REFERENCE.__dict__, "licence_cost": Decimal(500_000)})
    result = compute_roi(costly)
    assert result.net_benefit < 0 and result.payback_months is None


def test_measured_runs_are_scaled_to_a_month() -> None:
    runs = MeasuredRuns(
        finished=1000,
        automated=800,
        human_seconds=36_000.0,
        model_cost=500.0,
        period_days=Decimal(15),
    )
    inputs = inputs_from_runs(
        runs, minutes=Decimal(5), rate=Decimal(400), licence_cost=Decimal(0), investment=Decimal(0)
    )
    assert inputs.volume == 2000
    assert inputs.automation == Decimal("0.8")
    assert inputs.operation_cost == Decimal(1000)
    assert inputs.exceptions_cost == Decimal(8000)  # 10 h × 400 × 2


def test_periods() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    start, end = parse_period("30d", now=now)
    assert (end - start).days == 30
    start, end = parse_period("2026-10")
    assert (start.month, end.month) == (10, 11)
    with pytest.raises(ValidationError):
        parse_period("soon")


def test_cli_prints_the_reference_figures_and_says_hours_are_rounded_down() -> None:
    args = "roi --volume 10000 --minutes 5 --automation 0.8 --rate 400 --operation-cost 50000 "
    args += "--exceptions-cost 40000 --licence-cost 10000 --investment 400000"
    result = CliRunner().invoke(app, args.split())
    assert result.exit_code == 0, result.output
    for text in ("833 h", "666 h", "266,400", "166,400", "2.4 months", "rounded down"):
        assert text in result.stdout
    help_text = CliRunner().invoke(app, ["roi", "--help"]).stdout
    assert "--volume 10000" in help_text and "2.4 months" in help_text
