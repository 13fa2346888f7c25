"""``spojka demo``: the product story on the embedded default (SQLite, no LLM).

Each chapter is a function that tells one part of the story on the demo's own data;
later capabilities add their chapters to ``CHAPTERS``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.panel import Panel

from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.core.errors import SpojkaError
from spojka.governance import audit, tokens
from spojka.runtime import engine, runs
from spojka.runtime.flows import signal_decision


@dataclass
class DemoContext:
    app: Spojka
    console: Console
    facts: dict[str, Any] = field(default_factory=dict)


Chapter = Callable[[DemoContext], None]

SAMPLE_CUSTOMERS: list[dict[str, Any]] = [
    {"name": "Strojírny Vysočina s.r.o.", "ico": "25596641", "credit_limit": 150000},
    {"name": "Tatra Logistika a.s.", "ico": "27082440", "credit_limit": 750000},
    {"name": "Pekárna U Mlýna, spol. s r.o.", "ico": "12345678", "credit_limit": 50000},
]


def _wait_for_decision(ctx: DemoContext, workflow_id: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(ctx.app.sessions) as session:
            for decision in runs.pending_decisions(session):
                if decision.workflow_id == workflow_id:
                    return decision.id
        time.sleep(0.1)
    raise SpojkaError(f"flow {workflow_id} did not ask for a decision within {timeout:.0f}s")


def frame_chapter(ctx: DemoContext) -> None:
    """New customers: checked, auto-approved under the limit, a person approves above it."""
    settings = ctx.app.settings
    started = []
    for customer in SAMPLE_CUSTOMERS:
        wid = engine.enqueue(
            settings,
            "demo.customer_onboarding",
            customer,
            subject=customer["name"],
            workflow_id=f"demo-onboarding-{customer['ico']}-{secrets.token_hex(3)}",
        )
        started.append((customer, wid))
    for customer, wid in started:
        if customer["credit_limit"] > 200000:
            decision_id = _wait_for_decision(ctx, wid)
            signal_decision(
                decision_id=decision_id,
                decision="approve",
                actor="jana.novakova",
                role="approver",
                reason="Ověřeno s obchodním ředitelem",
                minutes_spent=3,
            )
        result = engine.wait_result(settings, wid, timeout=60)
        outcome = result.get("outcome")
        mark = {
            "automated": "auto",
            "approved": "approved by jana.novakova",
            "rejected": "rejected",
        }.get(outcome, outcome)
        detail = "; ".join(result.get("problems") or [])
        ctx.console.print(f"  {customer['name']:<32} {mark}{' — ' + detail if detail else ''}")


CHAPTERS: list[tuple[str, Chapter]] = [
    ("Runtime, approvals and audit: onboarding three customers", frame_chapter),
]
from spojka.documents.demo import ap_chapter  # noqa: E402
from spojka.flows.demo import handoff_chapter  # noqa: E402
from spojka.quality.demo import quality_chapter  # noqa: E402
from spojka.sync.demo import sync_chapter  # noqa: E402

CHAPTERS += [
    ("First sync: Tryton and Redmine connected", sync_chapter),
    ("Quote to cash: won deal → project, order, invoice", handoff_chapter),
    ("Supplier invoices: read, checked, matched, approved, posted", ap_chapter),
    ("Customer data: duplicates across systems, golden records", quality_chapter),
]


def run_demo(app: Spojka, console: Console) -> dict[str, Any]:
    """Run every chapter in the in-process runtime and print a summary; returns the facts."""
    from spojka.cli.core_commands import print_summary

    ctx = DemoContext(app=app, console=console)
    engine.launch(app.settings, executor_id="demo")
    try:
        for number, (title, chapter) in enumerate(CHAPTERS, start=1):
            console.rule(f"[bold]{number}. {title}")
            chapter(ctx)
    except BaseException:
        # a run left waiting (for a person, or asleep until a reminder) would keep the
        # runtime from stopping: cancel what is still open, then report the failure
        engine.cancel_open_runs(app.settings)
        raise
    finally:
        engine.shutdown()
    console.rule("[bold]Summary")
    print_summary(app)
    with transaction(app.sessions) as session:
        chain = audit.verify(session)
        _, admin_token = tokens.create(
            session, name=f"demo-admin-{secrets.token_hex(3)}", role="admin", actor="demo"
        )
    ctx.facts["audit_entries"] = chain.entries
    ctx.facts["admin_token"] = admin_token
    console.print(
        Panel.fit(
            f"audit chain: {'intact' if chain.ok else 'BROKEN'} ({chain.entries} entries)\n"
            f"data folder: {app.settings.data_dir.resolve()}\n"
            f"admin token for this demo (shown once):\n{admin_token}",
            title="Spojka demo",
        )
    )
    return ctx.facts
