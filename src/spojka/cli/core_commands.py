"""Commands of the frame: init, db, serve, worker, token, status, audit, runs, decisions."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import typer
from rich.table import Table

from spojka.cli.context import console, instance
from spojka.core.db import transaction
from spojka.core.errors import ValidationError
from spojka.governance import audit, tokens
from spojka.governance.models import Role

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(
    help="API tokens (only a hash is stored; the token is shown once).", no_args_is_help=True
)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
runs_app = typer.Typer(help="Flow run records (the basis of KPIs and ROI).", no_args_is_help=True)
decisions_app = typer.Typer(help="Flows waiting for a person's decision.", no_args_is_help=True)


def init() -> None:
    """Create the data folder, its encryption key and the database schema."""
    app = instance(migrate=True, create_key=True)
    console.print(f"data folder  {app.settings.data_dir.resolve()}")
    console.print(f"database     {app.engine.url.render_as_string(hide_password=True)}")
    console.print("schema       up to date")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations."""
    instance(migrate=True, create_key=True)
    console.print("schema up to date")


def serve(
    host: str = typer.Option(None, help="Address to listen on (default SPOJKA_HOST)."),
    port: int = typer.Option(None, help="Port (default SPOJKA_PORT, 8000)."),
) -> None:
    """Serve the API and web UI, with an in-process worker for flows."""
    import uvicorn

    from spojka.api.app import create_app

    app = instance()
    settings = app.settings
    uvicorn.run(
        create_app(app, with_runtime=True),
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
    )


def worker(
    processes: int = typer.Option(1, min=1, max=64, help="Worker processes to supervise."),
    executor_id: str = typer.Option(None, help="Run one worker with this stable id (internal)."),
) -> None:
    """Run flow workers; a supervisor restarts a dead one so its unfinished work resumes."""
    from spojka.runtime import engine, supervisor

    if executor_id is None:
        instance()  # fail early, in the supervisor, on a wrong setting or database
        supervisor.supervise(processes)
        return
    app = instance()
    engine.launch(app.settings, executor_id=executor_id)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"worker {executor_id} ready (pid {os.getpid()})")
    sys.stdout.flush()
    stop.wait()
    engine.shutdown()


@token_app.command("create")
def token_create(
    role: Role = typer.Option(..., help="admin, integrator, approver, viewer or auditor."),
    name: str = typer.Option(..., help="A unique name, e.g. the person or system using it."),
) -> None:
    """Create a token and print it alone on the last line (it is not shown again)."""
    app = instance()
    with transaction(app.sessions) as session:
        token, plain = tokens.create(session, name=name, role=role, actor="cli")
        console.print(
            f"token {token.name!r} (role {token.role}, id {token.id}) created; "
            "store it now, it is not shown again:"
        )
    print(plain)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    app = instance()
    table = Table("id", "name", "role", "created", "revoked")
    with transaction(app.sessions) as session:
        for t in tokens.list_tokens(session):
            table.add_row(
                str(t.id),
                t.name,
                t.role,
                f"{t.created_at:%Y-%m-%d %H:%M}",
                f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
            )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="Token id from `token list`.")) -> None:
    """Revoke a token; it stops working at once."""
    app = instance()
    with transaction(app.sessions) as session:
        tokens.revoke(session, token_id=token_id, actor="cli")
    console.print(f"token {token_id} revoked")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain; report the first altered, inserted or deleted entry."""
    app = instance()
    with transaction(app.sessions) as session:
        report = audit.verify(session)
    if report.ok:
        console.print(f"audit chain intact: {report.entries} entries")
        return
    console.print(f"[red]audit chain broken:[/red] {report.problem}")
    raise typer.Exit(1)


@audit_app.command("list")
def audit_list(limit: int = typer.Option(20, min=1, max=1000)) -> None:
    """Show the newest audit entries."""
    app = instance()
    table = Table("seq", "time", "actor", "action", "object", "reason")
    with transaction(app.sessions) as session:
        for e in audit.list_entries(session, limit=limit):
            table.add_row(
                str(e.seq),
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.action,
                f"{e.object_type}:{e.object_id}",
                e.reason or "",
            )
    console.print(table)


@runs_app.command("list")
def runs_list(
    flow: str = typer.Option(None),
    limit: int = typer.Option(20, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Show the newest flow runs."""
    from spojka.runtime import runs
    from spojka.runtime.models import FlowRunRead

    app = instance()
    with transaction(app.sessions) as session:
        items = [
            FlowRunRead.model_validate(r) for r in runs.list_runs(session, flow=flow, limit=limit)
        ]
    if as_json:
        for item in items:
            print(item.model_dump_json())
        return
    table = Table("workflow", "flow", "outcome", "latency ms", "human s", "started")
    for r in items:
        table.add_row(
            r.workflow_id[:12],
            r.flow,
            r.outcome,
            f"{r.latency_ms:.0f}" if r.latency_ms is not None else "",
            f"{r.human_seconds:.0f}",
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


def print_summary(app: object | None = None) -> None:
    from spojka.runtime import runs

    spojka_app = instance() if app is None else app
    table = Table(
        "flow",
        "runs",
        "automated",
        "approved",
        "rejected",
        "failed",
        "dead-lettered",
        "avg latency ms",
        "human min",
        "automation",
    )
    with transaction(spojka_app.sessions) as session:  # type: ignore[attr-defined]
        for s in runs.summarize(session):
            rate = s.automation_rate
            table.add_row(
                s.flow,
                str(s.runs),
                str(s.automated),
                str(s.approved),
                str(s.rejected),
                str(s.failed),
                str(s.dead_lettered),
                f"{s.avg_latency_ms:.0f}" if s.avg_latency_ms is not None else "",
                f"{s.human_seconds / 60:.1f}",
                f"{rate:.0%}" if rate is not None else "",
            )
    console.print(table)


@runs_app.command("summary")
def runs_summary() -> None:
    """Runs per flow and outcome, latency, human time, automation rate."""
    print_summary()


@decisions_app.command("list")
def decisions_list() -> None:
    """Flows waiting for a decision."""
    from spojka.runtime import runs

    app = instance()
    table = Table("id", "subject", "summary", "role", "requested")
    with transaction(app.sessions) as session:
        for d in runs.pending_decisions(session):
            table.add_row(
                str(d.id), d.subject, d.summary, d.required_role, f"{d.requested_at:%Y-%m-%d %H:%M}"
            )
    console.print(table)


def _decide(decision_id: int, decision: str, actor: str, reason: str | None) -> None:
    from spojka.runtime.flows import signal_decision

    instance()
    result = signal_decision(
        decision_id=decision_id, decision=decision, actor=actor, role="admin", reason=reason
    )
    console.print(json.dumps(result, ensure_ascii=False))


@decisions_app.command("approve")
def decisions_approve(
    decision_id: int,
    actor: str = typer.Option(os.environ.get("USER", "cli"), help="Who decides."),
    reason: str = typer.Option(None),
) -> None:
    """Approve; the waiting flow continues."""
    _decide(decision_id, "approve", actor, reason)


@decisions_app.command("reject")
def decisions_reject(
    decision_id: int,
    reason: str = typer.Option(..., help="Why (required)."),
    actor: str = typer.Option(os.environ.get("USER", "cli"), help="Who decides."),
) -> None:
    """Reject with a reason; the waiting flow records it."""
    if not reason.strip():
        raise ValidationError("a rejection needs a reason")
    _decide(decision_id, "reject", actor, reason)


def status() -> None:
    """Health of this instance: database, schema, runs, pending decisions, audit chain."""
    from spojka.runtime import runs

    app = instance()
    with transaction(app.sessions) as session:
        summary = runs.summarize(session)
        pending = len(runs.pending_decisions(session))
        chain = audit.verify(session)
    table = Table("", "")
    table.add_row("data folder", str(app.settings.data_dir.resolve()))
    table.add_row("database", app.engine.url.render_as_string(hide_password=True))
    table.add_row("flow runs", str(sum(s.runs for s in summary)))
    table.add_row("waiting for a decision", str(pending))
    table.add_row(
        "audit chain",
        f"intact, {chain.entries} entries" if chain.ok else f"BROKEN: {chain.problem}",
    )
    console.print(table)
    time.sleep(0)
