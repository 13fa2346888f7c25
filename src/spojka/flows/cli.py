"""``spojka kpi``, ``spojka capacity`` and ``spojka handoff …`` (mounted without a group name,
so the commands sit at the top level)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

app = typer.Typer(help="Quote-to-cash flows: handoff, billing, capacity, KPIs.")
handoff_app = typer.Typer(help="Sales → delivery handoffs.", no_args_is_help=True)
app.add_typer(handoff_app, name="handoff")
account_app = typer.Typer(help="Customers across CRM, PM and ERP.", no_args_is_help=True)
app.add_typer(account_app, name="account")


def _fmt_s(value: float | None) -> str:
    """A duration in the unit a person reads it in: 42.0 s, 12.5 min, 3.2 h, 4.1 d."""
    if value is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.1f} s"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


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
    """Queue handoffs (won Tryton opportunities), billing (closed milestones, last month's
    time), change requests, support tickets → CRM and payments → deal and project."""
    from spojka.cli.context import console, instance
    from spojka.flows import billing, changes, handoff, payments, systems, tickets, timesheets

    instance()
    cfg = systems.config()
    if cfg.systems.tryton is not None:
        console.print(f"handoffs: {handoff.poll_tryton_won()}")
    if cfg.systems.redmine is not None:
        console.print(f"billing: {billing.poll_milestones()}")
        console.print(f"change requests: {changes.poll_change_requests()}")
        console.print(f"time & material: {timesheets.poll_timesheets()}")
        console.print(f"support tickets: {tickets.poll_tickets()}")
    if cfg.systems.tryton is not None:
        console.print(f"payments: {payments.poll_payments()}")


def _money(value: object, currency: object = "") -> str:
    from decimal import Decimal

    return f"{Decimal(str(value)):,.2f} {currency or ''}".replace(",", " ").strip()


def _show(table: Table) -> None:
    from spojka.cli.context import console

    if table.row_count:
        console.print(table)
    else:
        console.print(f"{table.title}: none")


@account_app.command("show")
def account_show(
    account: str = typer.Argument(..., help="Spojka's canonical id or the customer's IČO."),
    output: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Customer 360: open deals, projects and budget burn, open tickets with SLA risk,
    invoices due and overdue, DSO and the last activities, each with a link."""
    from spojka.cli.context import console, instance
    from spojka.core.errors import ValidationError
    from spojka.flows import customer360

    if output not in ("table", "json"):
        raise ValidationError(f"--format must be table or json, not {output!r}")
    instance()
    view = customer360.build(account)
    if output == "json":
        console.print_json(view.model_dump_json())
        return
    acc = view.account
    console.print(f"[bold]{acc.name or '?'}[/]  IČO {acc.ico or '–'}  (id {acc.id or '–'})")
    for system, url in acc.links.items():
        console.print(f"  {system}: {url}")
    for name, state in sorted(view.systems.items()):
        colour = "green" if state.status == "ok" else "yellow"
        reason = f": {state.reason}" if state.reason else ""
        console.print(f"  {name}: [{colour}]{state.status}[/]{reason}")

    deals = Table(title="Open deals")
    for column in ("deal", "stage", "amount", "probability", "link"):
        deals.add_column(column, justify="right" if column == "amount" else "left", overflow="fold")
    for deal in view.deals:
        deals.add_row(
            deal.name,
            deal.stage or "–",
            _money(deal.amount, deal.currency) if deal.amount is not None else "–",
            "–" if deal.probability is None else f"{deal.probability:.0f} %",
            deal.url or "–",
        )
    _show(deals)

    projects = Table(title="Projects")
    for column in ("project", "status", "hours spent / budget", "burn", "milestones", "link"):
        projects.add_column(column, overflow="fold")
    for p in view.projects:
        projects.add_row(
            p.name,
            p.status,
            f"{p.hours_spent:.1f} / {p.hours_budget:.1f} h"
            if p.hours_budget is not None
            else f"{p.hours_spent:.1f} h",
            "–" if p.burn_pct is None else f"{p.burn_pct:.1f} %",
            f"{p.milestones_closed} done, {p.milestones_open} open",
            p.url,
        )
    _show(projects)

    tickets_table = Table(title="Open support tickets")
    for column in ("ticket", "status", "SLA deadline", "left", "risk", "link"):
        tickets_table.add_column(column, overflow="fold")
    colours = {"ok": "green", "at_risk": "yellow", "breached": "bold red"}
    for t in view.tickets:
        tickets_table.add_row(
            f"#{t.id} {t.subject}",
            t.status,
            f"{t.sla_deadline[:16].replace('T', ' ')} UTC ({t.sla_kind})",
            f"{t.hours_left:.1f} h",
            f"[{colours.get(t.risk, 'white')}]{t.risk}[/]",
            t.url,
        )
    _show(tickets_table)

    invoices = Table(title="Invoices")
    for column in ("number", "state", "total", "to pay", "due", "overdue", "link"):
        invoices.add_column(
            column, justify="right" if column in ("total", "to pay") else "left", overflow="fold"
        )
    for inv in view.invoices:
        invoices.add_row(
            inv.number or f"({inv.state})",
            inv.payment,
            _money(inv.total, inv.currency),
            _money(inv.to_pay, inv.currency),
            str(inv.due_date or "–"),
            f"[red]{inv.overdue_days} d[/]" if inv.overdue_days else "–",
            inv.url,
        )
    _show(invoices)
    for r in view.receivables:
        dso = "–" if r.dso_days is None else f"{r.dso_days:.1f} days"
        console.print(
            f"receivables {r.currency}: due {_money(r.due, r.currency)}, overdue "
            f"{_money(r.overdue, r.currency)}, DSO {dso} ({view.dso_window_days}-day window)"
        )

    activities = Table(title="Last activities")
    for column in ("when", "system", "what", "link"):
        activities.add_column(column, overflow="fold")
    for a in view.activities:
        activities.add_row((a.when or "–")[:16], a.system, f"{a.kind}: {a.text}"[:90], a.url or "–")
    _show(activities)
