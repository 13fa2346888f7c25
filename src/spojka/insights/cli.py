"""``spojka roi``: what automating a process saves, from parameters or from measured runs."""

from __future__ import annotations

from decimal import Decimal

import typer

from spojka.core.errors import ValidationError
from spojka.insights.roi import (
    MeasuredRuns,
    RoiInputs,
    RoiResult,
    compute_roi,
    inputs_from_runs,
    parse_period,
)

app = typer.Typer(help="KPIs and ROI from run records.", no_args_is_help=True)

ROI_HELP = """Hours saved, gross and net monthly benefit, and payback of an automated process.

Hours are rounded down to whole hours before money is computed.

\b
Example (the reference: 10,000 invoices a month, 5 min each, 80 % automated):
  spojka roi --volume 10000 --minutes 5 --automation 0.8 --rate 400 \\
    --operation-cost 50000 --exceptions-cost 40000 --licence-cost 10000 --investment 400000
  → 833 h manual, 666 h saved, 266,400 Kč gross, 166,400 Kč net a month, payback ≈ 2.4 months

\b
From the run records of the last 30 days (volume, automation, model and exception cost
measured; minutes per manual case, rate, licences and investment given):
  spojka roi --from-runs --period 30d --flow invoice_intake --minutes 5 --rate 400 \\
    --licence-cost 10000 --investment 400000
"""


def _money(value: Decimal, currency: str) -> str:
    return (
        f"{value:,.0f} {currency}"
        if value == value.to_integral_value()
        else f"{value:,.2f} {currency}"
    )


def _measured(period: str, flow: str | None) -> tuple[MeasuredRuns, str]:
    from spojka.cli.context import instance
    from spojka.runtime.runs import summarize

    start, end = parse_period(period)
    spojka = instance()
    with spojka.sessions() as session:
        rows = summarize(session, since=start)
    if flow:
        rows = [r for r in rows if r.flow == flow]
    if not rows:
        raise ValidationError(
            f"no run records since {start:%Y-%m-%d}" + (f" for flow {flow}" if flow else "")
        )
    days = Decimal(str((end - start).total_seconds() / 86400))
    runs = MeasuredRuns(
        finished=sum(r.finished for r in rows),
        automated=sum(r.automated for r in rows),
        human_seconds=sum(r.human_seconds for r in rows),
        model_cost=sum(r.model_cost for r in rows),
        period_days=days,
    )
    label = (
        f"{runs.finished} finished runs ({runs.automated} without a person) since {start:%Y-%m-%d}"
    )
    return runs, label


def roi(
    volume: Decimal = typer.Option(None, "--volume", help="Cases per month"),
    minutes: Decimal = typer.Option(..., "--minutes", help="Manual minutes per case"),
    automation: Decimal = typer.Option(None, "--automation", help="Automated share: 0.8 or 80"),
    rate: Decimal = typer.Option(..., "--rate", help="Internal cost of one hour"),
    operation_cost: Decimal = typer.Option(
        Decimal(0), "--operation-cost", help="Model operation per month"
    ),
    exceptions_cost: Decimal = typer.Option(
        Decimal(0), "--exceptions-cost", help="People for exceptions per month"
    ),
    licence_cost: Decimal = typer.Option(Decimal(0), "--licence-cost", help="Licences per month"),
    investment: Decimal = typer.Option(Decimal(0), "--investment", help="One-off investment"),
    from_runs: bool = typer.Option(
        False, "--from-runs", help="Measure volume, automation and costs from run records"
    ),
    period: str = typer.Option("30d", "--period", help="With --from-runs: 30d, 12w, 3m or 2026-10"),
    flow: str = typer.Option(None, "--flow", help="With --from-runs: only this flow"),
    currency: str = typer.Option("Kč", "--currency", help="Shown after amounts"),
) -> None:
    from spojka.cli.context import console

    source = "parameters"
    if from_runs:
        runs, source = _measured(period, flow)
        inputs = inputs_from_runs(
            runs,
            minutes=minutes,
            rate=rate,
            licence_cost=licence_cost,
            investment=investment,
            operation_cost=operation_cost,
        )
    else:
        if volume is None or automation is None:
            raise ValidationError("--volume and --automation are needed (or use --from-runs)")
        inputs = RoiInputs(
            volume=volume,
            minutes=minutes,
            automation=automation,
            rate=rate,
            operation_cost=operation_cost,
            exceptions_cost=exceptions_cost,
            licence_cost=licence_cost,
            investment=investment,
        )
    result: RoiResult = compute_roi(inputs)
    console.print(f"ROI from {source}")
    console.print(f"  manual work:        {result.manual_hours:,} h a month")
    console.print(f"  hours saved:        {result.saved_hours:,} h a month")
    console.print(f"  gross benefit:      {_money(result.gross_benefit, currency)} a month")
    console.print(f"  monthly costs:      {_money(result.monthly_costs, currency)}")
    console.print(f"  net benefit:        {_money(result.net_benefit, currency)} a month")
    if result.payback_months is None:
        console.print("  payback:            none (the net benefit is not positive)")
    else:
        console.print(
            f"  payback:            ≈ {result.payback_months:.1f} months "
            f"({result.payback_months} exactly)"
        )
    console.print("  (hours are rounded down to whole hours before money is computed)")


roi.__doc__ = ROI_HELP
app.command("roi", help=ROI_HELP)(roi)
