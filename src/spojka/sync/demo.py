"""The demo chapter of the sync engine: Tryton and Redmine connected, a first sync.

Starts Tryton and Redmine from their golden snapshots (a few seconds once cached), writes a
few Czech records into them through the connectors, connects both to Spojka with the shipped
default mappings and polls each once and again: the second poll finds nothing new.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import spojka.connectors.redmine as redmine_package
import spojka.connectors.tryton as tryton_package
from spojka.connectors.redmine.connector import RedmineConnector
from spojka.connectors.tryton.connector import TrytonConnector
from spojka.localsystems import redmine, tryton
from spojka.sync import service
from spojka.sync.engine import StreamReport, SyncEngine

ERP, PM = "demo-erp", "demo-pm"


def _mapping(package: Any, name: str) -> str:
    return (Path(package.__file__).parent / "mappings" / f"{name}.yaml").read_text()


@contextmanager
def _systems() -> Iterator[tuple[tryton.TrytonServer, redmine.RedmineServer]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        erp_start, pm_start = pool.submit(tryton.start), pool.submit(redmine.start)
        try:
            yield erp_start.result(), pm_start.result()
        finally:
            for future in (erp_start, pm_start):
                # a system that did start is stopped even when the other one failed
                with contextlib.suppress(Exception):
                    future.result().stop()


def _seed(erp_config: dict[str, Any], pm_config: dict[str, Any], tag: str) -> dict[str, str]:
    """A few realistic Czech records, written through the connectors."""
    erp = TrytonConnector(erp_config)
    pm = RedmineConnector(pm_config)
    try:
        parties = erp.stream("parties")
        party = erp.write(
            parties,
            {
                "name": "Strojírny Vysočina s.r.o.",
                "ico": "25596641",
                "dic": "CZ25596641",
                "city": "Jihlava",
            },
            external_id=None,
            idempotency_key=f"demo-sync-party-{tag}",
        )
        erp.write(
            parties,
            {"name": "Pekárna U Mlýna, spol. s r.o.", "city": "Třebíč"},
            external_id=None,
            idempotency_key=f"demo-sync-bakery-{tag}",
        )
        project = pm.write(
            pm.stream("projects"),
            {"name": "Zavedení docházky – Žďár nad Sázavou"},
            external_id=None,
            idempotency_key=f"demo-sync-project-{tag}",
        )
        tasks = pm.stream("tasks")
        for number, subject in enumerate(
            ("Nastavit směny a svátky", "Školení mistrů výroby", "Převod údajů ze čteček")
        ):
            pm.write(
                tasks,
                {"project_id": project.external_id, "subject": subject, "estimated_hours": 4},
                external_id=None,
                idempotency_key=f"demo-sync-task-{tag}-{number}",
            )
    finally:
        erp.close()
        pm.close()
    return {"party": party.external_id}


def _line(reports: list[StreamReport]) -> str:
    parts = [
        f"{r.stream} {r.records}/{r.stats.created}" for r in reports if r.records or r.stats.created
    ]
    seconds = sum(r.seconds for r in reports)
    return f"{', '.join(parts) or 'nothing'} in {seconds:.1f} s"


def sync_chapter(ctx: Any) -> None:
    """Tryton and Redmine are connected to Spojka and synced once; a second poll is a no-op."""
    app, say = ctx.app, ctx.console.print
    db = app.engine
    started = time.monotonic()
    say("  starting Tryton and Redmine from their golden snapshots …")
    with _systems() as (erp_server, pm_server):
        erp_config = {
            "url": erp_server.url,
            "database": erp_server.database,
            "user": erp_server.user,
            "password": erp_server.password,
        }
        pm_config = {"url": pm_server.url, "api_key": pm_server.api_key}
        seeded = _seed(erp_config, pm_config, secrets.token_hex(3))
        say(
            f"  ready in {time.monotonic() - started:.1f} s; wrote 2 parties (IČO 25596641) "
            "to Tryton, a project with 3 tasks to Redmine"
        )
        service.save_connection(
            db=db,
            name=ERP,
            kind="tryton",
            config=erp_config,
            mapping_yaml=_mapping(tryton_package, "tryton"),
        )
        service.save_connection(
            db=db,
            name=PM,
            kind="redmine",
            config=pm_config,
            mapping_yaml=_mapping(redmine_package, "redmine"),
        )
        for name in (ERP, PM):  # a rerun in the same data folder reads everything again
            service.reset_cursor(db=db, connection=name)
        sync = SyncEngine(db)
        try:
            say("  first poll (stream read/created):")
            for name in (ERP, PM):
                label = sync.runtime(name).mapping_label
                say(f"    {name} ({label}): {_line(sync.poll(name))}")
            again = [r for name in (ERP, PM) for r in sync.poll(name)]
            created = sum(r.stats.applied for r in again)
            unchanged = sum(r.stats.unchanged for r in again)
            say(
                f"  second poll: {sum(r.records for r in again)} read (cursor overlap), "
                f"{created} created or changed, {unchanged} unchanged — idempotent"
            )
            for name in (ERP, PM):
                h = service.health(db=db, connection=name, engine=sync)
                lags = [s["lag_s"] for s in h["streams"] if s["lag_s"] is not None]
                lag = f"{max(lags):.0f} s" if lags else "–"
                say(
                    f"  health {name}: {'ok' if h['ok'] else 'NOT ok'}, lag {lag}, "
                    f"DLQ {h['dlq_depth']}, outbox {h['pending_deliveries']} (changes bound for it)"
                )
            record = service.find_record(
                db=db, system=ERP, entity="Account", external_id=seeded["party"]
            )
            data = record["data"]
            say(
                f"  canonical Account {record['canonical_id'][:8]}… "
                f"(v{record['version']}, {record['mapping_version']}):"
            )
            say(
                f"    {data.get('name')} · IČO {data.get('ico')} · DIČ {data.get('dic')} · "
                f"{(data.get('address') or {}).get('city')}"
            )
        finally:
            sync.close()
    say(f"  chapter took {time.monotonic() - started:.1f} s; Tryton and Redmine stopped")
