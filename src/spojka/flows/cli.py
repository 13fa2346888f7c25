"""``spojka kpi``, ``spojka capacity`` and ``spojka handoff …`` (mounted without a group name,
so the commands sit at the top level)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

app = typer.Typer(help="Quote-to-cash flows: handoff, billing, capacity, KPIs.")
handoff_app = typer.Typer(help="Sales → delivery handoffs.", no_args_is_help=True)
app.add_typer(handoff_app, name="handoff")


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 3600:.1f} h" if value >= 3600 else f"{value:.1f} s"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


@app.command("kpi")
def kpi_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Won→ready lead time, time to invoice, share without a person, failure rate."""
    from spojka.cli.context import console, instance
    from spojka.flows import service

    instance()
    rows = service.kpis()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Quote-to-cash KPIs (from run records)")
    for column in (
        "flow",
        "runs",
        "finished",
        "without a person",
        "failed",
        "waiting",
        "median",
        "p90",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["flow"],
            str(row["runs"]),
            str(row["finished"]),
            _pct(row["without_human"]),
            _pct(row["failure_rate"]),
            str(row["waiting"]),
            f"{_fmt_s(row['median_s'])} ({row['time_metric']})",
            _fmt_s(row["p90_s"]),
        )
    console.print(table)


@app.command("capacity")
def capacity_command(
    weeks: int = typer.Option(12, min=1, max=52, help="Weeks ahead."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Demand from the weighted pipeline and booked projects vs. capacity, per role and week."""
    from spojka.cli.context import console, instance
    from spojka.flows import service

    instance()
    result = service.capacity_forecast(weeks=weeks)
    if as_json:
        console.print_json(json.dumps(result))
        return
    roles = sorted({r["role"] for r in result["rows"]})
    table = Table(title=f"Capacity from {result['start']} ({result['sources']} sources), h/week")
    table.add_column("week")
    for role in roles:
        table.add_column(role, justify="right")
    by_week: dict[str, dict[str, dict[str, object]]] = {}
    for row in result["rows"]:
        by_week.setdefault(str(row["week"]), {})[str(row["role"])] = row
    for week, cells in by_week.items():
        values = []
        for role in roles:
            cell = cells[role]
            text = f"{cell['demand_h']:.0f}/{cell['capacity_h']:.0f}"
            values.append(f"[bold red]{text} ⚠[/]" if cell["over_allocated"] else text)
        table.add_row(week, *values)
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[yellow]not included: {problem}")


@handoff_app.command("start")
def handoff_start(
    deal: str = typer.Argument(..., help="The deal id in the CRM."),
    crm: str = typer.Option("bottlecrm", help="bottlecrm or tryton."),
) -> None:
    """Queue the handoff of one won deal (the same deal twice runs once)."""
    from spojka.cli.context import console, instance
    from spojka.flows import handoff

    instance()
    console.print(handoff.start(crm, deal))


@handoff_app.command("poll")
def handoff_poll() -> None:
    """Queue handoffs (won Tryton opportunities), billing (closed milestones), change requests."""
    from spojka.cli.context import console, instance
    from spojka.flows import billing, changes, handoff, systems

    instance()
    cfg = systems.config()
    if cfg.systems.tryton is not None:
        console.print(f"handoffs: {handoff.poll_tryton_won()}")
    if cfg.systems.redmine is not None:
        console.print(f"billing: {billing.poll_milestones()}")
        console.print(f"change requests: {changes.poll_change_requests()}")
