"""Return on investment of automating a process: pure arithmetic, no database.

hours saved = volume × minutes per case × automation rate; gross benefit = hours saved ×
internal hourly rate; net monthly benefit = gross − model operation − people for exceptions −
licences; payback = investment ÷ net monthly benefit. Hours are rounded down to whole hours
before money is computed, as in the reference example.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from spojka.core.errors import ValidationError

DAYS_PER_MONTH = Decimal("30")


@dataclass(frozen=True)
class RoiInputs:
    volume: Decimal  # cases per month
    minutes: Decimal  # manual minutes per case
    automation: Decimal  # share of cases no person touches, 0..1
    rate: Decimal  # internal cost of one hour
    operation_cost: Decimal = Decimal(0)  # model + hosting per month
    exceptions_cost: Decimal = Decimal(0)  # people handling exceptions per month
    licence_cost: Decimal = Decimal(0)  # per month
    investment: Decimal = Decimal(0)  # one-off


@dataclass(frozen=True)
class RoiResult:
    manual_hours: int
    saved_hours: int
    gross_benefit: Decimal
    monthly_costs: Decimal
    net_benefit: Decimal
    payback_months: Decimal | None  # None: the net benefit is not positive, no payback


def normalise_automation(value: Decimal) -> Decimal:
    """0.8 and 80 both mean 80 %."""
    if value < 0 or value > 100:
        raise ValidationError("automation must be a share (0–1) or a percentage (0–100)")
    return value / 100 if value > 1 else value


def compute_roi(inputs: RoiInputs) -> RoiResult:
    if inputs.volume < 0 or inputs.minutes < 0 or inputs.rate < 0:
        raise ValidationError("volume, minutes and rate must not be negative")
    automation = normalise_automation(inputs.automation)
    exact_manual = inputs.volume * inputs.minutes / 60
    manual_hours = math.floor(exact_manual)
    saved_hours = math.floor(exact_manual * automation)
    gross = Decimal(saved_hours) * inputs.rate
    costs = inputs.operation_cost + inputs.exceptions_cost + inputs.licence_cost
    net = gross - costs
    payback = None
    if net > 0:
        payback = (inputs.investment / net).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return RoiResult(
        manual_hours=manual_hours,
        saved_hours=saved_hours,
        gross_benefit=gross,
        monthly_costs=costs,
        net_benefit=net,
        payback_months=payback,
    )


@dataclass(frozen=True)
class MeasuredRuns:
    """What the run records of one period say about a flow."""

    finished: int
    automated: int
    human_seconds: float
    model_cost: float
    period_days: Decimal


def inputs_from_runs(
    runs: MeasuredRuns,
    *,
    minutes: Decimal,
    rate: Decimal,
    licence_cost: Decimal,
    investment: Decimal,
    operation_cost: Decimal = Decimal(0),
) -> RoiInputs:
    """Scale a measured period to one month: volume and automation from the runs, exception
    cost from the human time recorded on them, model cost from their recorded cost (plus any
    fixed operation cost given)."""
    if runs.finished == 0 or runs.period_days <= 0:
        raise ValidationError("no finished runs in the period: nothing to measure ROI from")
    scale = DAYS_PER_MONTH / runs.period_days
    human_hours = Decimal(str(runs.human_seconds)) / 3600
    return RoiInputs(
        volume=(Decimal(runs.finished) * scale).quantize(Decimal("1")),
        minutes=minutes,
        automation=Decimal(runs.automated) / Decimal(runs.finished),
        rate=rate,
        operation_cost=(Decimal(str(runs.model_cost)) * scale).quantize(Decimal("0.01"))
        + operation_cost,
        exceptions_cost=(human_hours * rate * scale).quantize(Decimal("0.01")),
        licence_cost=licence_cost,
        investment=investment,
    )


def parse_period(text: str, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """'30d', '12w', '3m' (months of 30 days) back from now, or a calendar month '2026-10'."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d+)\s*([dwm])\s*", text)
    if m:
        days = int(m.group(1)) * {"d": 1, "w": 7, "m": 30}[m.group(2)]
        if days <= 0:
            raise ValidationError("--period must be longer than zero days")
        return now - timedelta(days=days), now
    m = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*", text)
    if m:
        start = datetime(int(m.group(1)), int(m.group(2)), 1, tzinfo=UTC)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    raise ValidationError(f"--period {text!r}: use e.g. 30d, 12w, 3m or a month like 2026-10")
