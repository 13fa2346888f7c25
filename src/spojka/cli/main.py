"""The ``spojka`` command line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from spojka.core.errors import SpojkaError

app = typer.Typer(
    name="spojka",
    help="Spojka — links your CRM, ERP and project-management tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


from spojka.cli import core_commands as core  # noqa: E402

app.command()(core.init)
app.command()(core.serve)
app.command()(core.worker)
app.command()(core.status)
app.add_typer(core.db_app, name="db")
app.add_typer(core.token_app, name="token")
app.add_typer(core.audit_app, name="audit")
app.add_typer(core.runs_app, name="runs")
app.add_typer(core.decisions_app, name="decisions")


@app.command()
def demo(
    no_serve: bool = typer.Option(False, "--no-serve", help="Exit after the summary."),
    port: int = typer.Option(None, help="Port for the API after the story (default 8000)."),
) -> None:
    """Tell the whole story on local data, then serve the API on http://127.0.0.1:8000."""
    from spojka.cli.context import console, instance
    from spojka.demo import run_demo

    app_instance = instance(migrate=True, create_key=True)
    run_demo(app_instance, console)
    if not no_serve:
        console.print(
            f"serving on http://{app_instance.settings.host}:"
            f"{port or app_instance.settings.port}  (Ctrl-C to stop)"
        )
        core.serve(host=None, port=port)  # type: ignore[arg-type]


# --- sub-apps (each domain owns its own typer app) ---
from spojka.quality import cli as quality_cli  # noqa: E402

app.add_typer(quality_cli.app, name="quality")
from spojka.sync import cli as sync_cli  # noqa: E402

app.add_typer(sync_cli.app, name="sync")
app.add_typer(sync_cli.dlq_app, name="dlq")
app.add_typer(sync_cli.conflicts_app, name="conflicts")
app.add_typer(sync_cli.mapping_app, name="mapping")
app.add_typer(sync_cli.reconcile_app, name="reconcile")
from spojka.documents import cli as documents_cli  # noqa: E402
from spojka.insights import cli as insights_cli  # noqa: E402

app.add_typer(documents_cli.app, name="documents")
app.command("roi", help=insights_cli.ROI_HELP)(insights_cli.roi)
from spojka.flows import cli as flows_cli  # noqa: E402

app.add_typer(flows_cli.app)  # kpi, capacity, handoff at the top level
from spojka.connectors import cli as connectors_cli  # noqa: E402

app.add_typer(connectors_cli.connectors_app, name="connectors")
app.add_typer(connectors_cli.connections_app, name="connections")
# --- end sub-apps ---


def run() -> None:
    """Entry point: one clear line and a non-zero exit on error, traceback only with --debug."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SpojkaError as exc:
        if _state["debug"] or "--debug" in sys.argv:
            raise
        err_console.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # usage errors (typer's click) and the unexpected
        show = getattr(exc, "show", None)
        exit_code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        if _state["debug"] or "--debug" in sys.argv:
            raise
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        sys.exit(1)
