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


# --- sub-apps (each domain owns its own typer app) ---
# --- end sub-apps ---


def run() -> None:
    """Entry point: one clear line and a non-zero exit on error, traceback only with --debug."""
    try:
        app(standalone_mode=False)
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
    except Exception as exc:  # click usage errors and the unexpected
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if _state["debug"] or "--debug" in sys.argv:
            raise
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        sys.exit(1)
