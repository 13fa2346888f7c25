"""Read-side services of the flows: capacity inputs from the live systems, KPIs."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from spojka.bootstrap import current
from spojka.core.errors import SpojkaError
from spojka.flows import links, rules, systems
from spojka.flows.config import FlowsConfig
from spojka.flows.rules import Deal
from spojka.insights import capacity, kpi


def _today(cfg: FlowsConfig) -> dt.date:
    return cfg.today or dt.date.today()


def pipeline_demands(cfg: FlowsConfig) -> list[capacity.Demand]:
    """Open deals of the configured CRM, weighted by probability."""
    today = _today(cfg)
    demands: list[capacity.Demand] = []
    if cfg.systems.crm == "bottlecrm" and cfg.systems.bottlecrm is not None:
        client = systems.bottlecrm(cfg)
        for opp in client.iter_all("opportunities"):
            if str(opp.get("stage", "")).startswith("CLOSED") or not opp.get("amount"):
                continue
            notes = rules.fields_from_notes(str(opp.get("description") or ""))
            start = systems._date(notes.get("expected_start")) or systems._date(
                opp.get("closed_on")
            )
            deal = Deal(
                source="bottlecrm",
                id=str(opp["id"]),
                name=str(opp.get("name") or ""),
                stage_won=False,
                opportunity_type=opp.get("opportunity_type"),
            )
            demands += capacity.deal_demands(
                config=cfg,
                template=rules.choose_template(deal, cfg),
                amount=Decimal(str(opp["amount"])),
                probability=float(opp.get("probability") or 0) / 100,
                start=max(start or today, today),
                source=f"bottlecrm:{opp['id']}",
            )
    elif cfg.systems.tryton is not None:
        client_t = systems.tryton(cfg)
        for opp in client_t.search_read(
            "sale.opportunity",
            [("state", "in", ["lead", "opportunity"])],
            ["description", "amount", "conversion_probability", "start_date"],
        ):
            if not opp.get("amount"):
                continue
            deal = Deal(
                source="tryton",
                id=str(opp["id"]),
                name=str(opp.get("description") or ""),
                stage_won=False,
            )
            demands += capacity.deal_demands(
                config=cfg,
                template=rules.choose_template(deal, cfg),
                amount=Decimal(str(opp["amount"])),
                probability=float(opp.get("conversion_probability") or 0),
                start=max(systems._date(opp.get("start_date")) or today, today),
                source=f"tryton:{opp['id']}",
            )
    return demands


def booked_demands(cfg: FlowsConfig) -> list[capacity.Demand]:
    """Open WBS issues of the projects Spojka provisioned, up to their milestone dates."""
    if cfg.systems.redmine is None:
        return []
    today = _today(cfg)
    client = systems.redmine(cfg)
    with current().engine.begin() as conn:
        projects = [e["redmine/project"] for e in links.engagements(conn)]
    demands = []
    for project_id in projects:
        versions = {
            int(v["id"]): systems._date(v.get("due_date"))
            for v in client.get(f"/projects/{project_id}/versions.json")["versions"]
        }
        for issue in client.iter_all("/issues.json", "issues", project_id=project_id):
            hours = float(issue.get("estimated_hours") or 0)
            if not hours:
                continue
            role = str(issue.get("description") or "").removeprefix("Role: ").strip() or "?"
            due = versions.get(int((issue.get("fixed_version") or {}).get("id") or 0)) or today
            demands.append(
                capacity.Demand(role, hours, today, max(due, today), 1.0, f"redmine:{issue['id']}")
            )
    return demands


def _snapshot_path() -> Path:
    return current().settings.data_dir / "capacity-demands.json"


def _save(name: str, demands: list[capacity.Demand]) -> None:
    path = _snapshot_path()
    data = json.loads(path.read_text("utf-8")) if path.exists() else {}
    data[name] = {
        "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "demands": [
            {**asdict(d), "start": d.start.isoformat(), "end": d.end.isoformat()} for d in demands
        ],
    }
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")


def _load(name: str) -> tuple[str, list[capacity.Demand]] | None:
    path = _snapshot_path()
    if not path.exists():
        return None
    entry = json.loads(path.read_text("utf-8")).get(name)
    if not entry:
        return None
    demands = [
        capacity.Demand(
            **{
                **d,
                "start": dt.date.fromisoformat(d["start"]),
                "end": dt.date.fromisoformat(d["end"]),
            }
        )
        for d in entry["demands"]
    ]
    return str(entry["taken_at"]), demands


def capacity_forecast(*, weeks: int = 12) -> dict[str, Any]:
    """The forecast from the live systems; a source that cannot be reached is taken from the
    last snapshot (and said so)."""
    cfg = systems.config()
    problems = []
    demands: list[capacity.Demand] = []
    for name, gather in (("pipeline", pipeline_demands), ("projects", booked_demands)):
        try:
            found = gather(cfg)
            _save(name, found)
        except SpojkaError as exc:
            cached = _load(name)
            if cached is None:
                problems.append(f"{name}: {exc.message}")
                continue
            found = cached[1]
            problems.append(f"{name}: {exc.message}; using the snapshot of {cached[0]}")
        demands += found
    rows = capacity.forecast(demands, cfg.capacity, start=_today(cfg), weeks=weeks)
    return {
        "start": capacity.monday(_today(cfg)).isoformat(),
        "weeks": weeks,
        "rows": capacity.as_table(rows),
        "over_allocated": sum(1 for r in rows if r.over),
        "sources": len(demands),
        "problems": problems,
    }


def kpis() -> list[dict[str, Any]]:
    with current().sessions() as session:
        return kpi.as_dicts(kpi.load(session))
