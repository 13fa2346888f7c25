"""Quote-to-cash KPIs from run records: lead time won → project ready, time to invoice,
share of flows finished without a person, failure rate. Shown by ``spojka kpi`` and exported
on ``/metrics`` (computed when scraped).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from spojka.runtime.models import FINAL_OUTCOMES, FlowRun

FLOWS = {
    "flows.handoff": "lead_time_s",
    "flows.billing": "time_to_invoice_s",
    "flows.change_request": "cycle_time_s",
    "flows.timesheet_billing": "time_to_invoice_s",
}


@dataclass(frozen=True)
class FlowKpi:
    flow: str
    runs: int
    finished: int
    without_human: float | None
    failure_rate: float | None
    waiting: int
    time_metric: str
    median_s: float | None
    p90_s: float | None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def compute(rows: Iterable[tuple[str, str, float, dict[str, Any] | None]]) -> list[FlowKpi]:
    """KPIs per flow from ``(flow, outcome, human_seconds, detail)`` rows (pure)."""
    grouped: dict[str, list[tuple[str, float, dict[str, Any] | None]]] = {
        name: [] for name in FLOWS
    }
    for flow, outcome, human, detail in rows:
        if flow in grouped:
            grouped[flow].append((outcome, human or 0.0, detail))
    result = []
    for flow, items in grouped.items():
        metric = FLOWS[flow]
        finished = [i for i in items if i[0] in {o.value for o in FINAL_OUTCOMES}]
        automated = [i for i in finished if i[0] == "automated"]
        failed = [i for i in finished if i[0] in ("failed", "dead_lettered")]
        times = [
            float(d[metric]) for _, _, d in finished if d and isinstance(d.get(metric), int | float)
        ]
        result.append(
            FlowKpi(
                flow=flow,
                runs=len(items),
                finished=len(finished),
                without_human=len(automated) / len(finished) if finished else None,
                failure_rate=len(failed) / len(finished) if finished else None,
                waiting=sum(1 for i in items if i[0] == "waiting"),
                time_metric=metric,
                median_s=statistics.median(times) if times else None,
                p90_s=_quantile(times, 0.9),
            )
        )
    return result


def load(session: Session) -> list[FlowKpi]:
    rows = session.execute(
        sa.select(FlowRun.flow, FlowRun.outcome, FlowRun.human_seconds, FlowRun.detail).where(
            FlowRun.flow.in_(list(FLOWS))
        )
    )
    return compute((r[0], r[1], r[2], r[3]) for r in rows)


def _rounded(value: Any, digits: int) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def as_dicts(kpis: list[FlowKpi]) -> list[dict[str, Any]]:
    """KPIs as plain values: seconds to 0.1 s, shares to 0.1 %."""
    rows = []
    for kpi in kpis:
        row = asdict(kpi)
        for name in ("median_s", "p90_s"):
            row[name] = _rounded(row[name], 1)
        for name in ("without_human", "failure_rate"):
            row[name] = _rounded(row[name], 3)
        rows.append(row)
    return rows


class KpiCollector(Collector):
    """Prometheus gauges computed from the run records at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from spojka.bootstrap import _current

        if _current is None:
            return
        try:
            with _current.sessions() as session:
                kpis = load(session)
        except sa.exc.SQLAlchemyError:
            return
        families = {
            "runs": GaugeMetricFamily("spojka_flow_runs", "Runs per flow", labels=["flow"]),
            "without_human": GaugeMetricFamily(
                "spojka_flow_without_human_ratio",
                "Share finished without a person",
                labels=["flow"],
            ),
            "failure_rate": GaugeMetricFamily(
                "spojka_flow_failure_ratio", "Share of finished runs that failed", labels=["flow"]
            ),
            "median_s": GaugeMetricFamily(
                "spojka_flow_time_median_seconds",
                "Median lead time (won→ready, milestone→invoice, change request)",
                labels=["flow"],
            ),
        }
        for kpi in kpis:
            for name, family in families.items():
                value = getattr(kpi, name)
                if value is not None:
                    family.add_metric([kpi.flow], float(value))
        yield from families.values()


_registered = False


def register_metrics() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(KpiCollector())
        _registered = True
