"""Capacity from the weighted pipeline: demand per role and week for the next 12 weeks.

Open deals count with ``probability``: their amount at the template's hourly rate becomes
hours, split over roles as in the template's WBS and spread over the weeks from the expected
start to the last milestone. Projects already provisioned count fully: their open Redmine
issues (estimated hours, role) spread up to their milestone's due date.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from spojka.flows.config import FlowsConfig, RoleCapacity


@dataclass(frozen=True)
class Demand:
    role: str
    hours: float
    start: date
    end: date
    weight: float = 1.0
    source: str = ""


@dataclass(frozen=True)
class WeekRow:
    week: date  # Monday
    role: str
    demand: float
    capacity: float

    @property
    def over(self) -> bool:
        return self.demand > self.capacity

    @property
    def utilisation(self) -> float | None:
        return self.demand / self.capacity if self.capacity else None


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def forecast(
    demands: list[Demand],
    capacity: dict[str, RoleCapacity],
    *,
    start: date,
    weeks: int = 12,
) -> list[WeekRow]:
    """Demand vs. capacity per role and week (pure)."""
    first = monday(start)
    horizon = [first + timedelta(weeks=i) for i in range(weeks)]
    per: dict[tuple[date, str], float] = defaultdict(float)
    for demand in demands:
        begin, end = monday(demand.start), monday(max(demand.end, demand.start))
        span = max(1, (end - begin).days // 7 + 1)
        per_week = demand.hours * demand.weight / span
        for i in range(span):
            week = begin + timedelta(weeks=i)
            if first <= week <= horizon[-1]:
                per[(week, demand.role)] += per_week
    roles = sorted(set(capacity) | {d.role for d in demands})
    rows = []
    for week in horizon:
        for role in roles:
            cap = capacity.get(role)
            available = float(cap.people * cap.hours_per_week) if cap else 0.0
            rows.append(WeekRow(week, role, round(per[(week, role)], 1), available))
    return rows


def deal_demands(
    *,
    config: FlowsConfig,
    template: str,
    amount: Decimal,
    probability: float,
    start: date,
    source: str,
) -> list[Demand]:
    """Role hours of one open deal, weighted by its probability."""
    tpl = config.templates[template]
    hours = float(amount / tpl.hourly_rate)
    wbs_total = float(sum((t.hours for t in tpl.wbs), Decimal(0))) or 1.0
    end = start + timedelta(days=max(m.offset_days for m in tpl.milestones))
    shares: dict[str, float] = defaultdict(float)
    for task in tpl.wbs:
        shares[task.role] += float(task.hours) / wbs_total
    if not shares:
        shares["konzultant"] = 1.0
    return [
        Demand(role, hours * share, start, end, probability, source)
        for role, share in shares.items()
    ]


def as_table(rows: list[WeekRow]) -> list[dict[str, Any]]:
    return [
        {
            "week": r.week.isoformat(),
            "role": r.role,
            "demand_h": round(r.demand, 1),
            "capacity_h": round(r.capacity, 1),
            "utilisation": None if r.utilisation is None else round(r.utilisation, 2),
            "over_allocated": r.over,
        }
        for r in rows
    ]
