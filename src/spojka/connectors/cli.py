"""``spojka connectors list`` and ``spojka connections test``."""

from __future__ import annotations

import tempfile

import typer
from rich.table import Table

from spojka.cli.context import console, instance
from spojka.connectors import registry
from spojka.connectors.base import Connector
from spojka.core.errors import SpojkaError

connectors_app = typer.Typer(help="Installed connector kinds (plugins).", no_args_is_help=True)
connections_app = typer.Typer(help="Configured connections to systems.", no_args_is_help=True)


def capabilities(cls: type[Connector]) -> dict[str, object]:
    """What a connector kind can do, read from its declaration and the methods it overrides."""
    # Declarations need no live system: placeholders satisfy the constructors, which do not
    # connect until the first call.
    placeholders = {
        "url": "http://127.0.0.1:9",
        "database": "-",
        "user": "-",
        "password": "-",
        "api_key": "-",
        "token": "-",
        "folder": tempfile.gettempdir(),
    }
    try:
        connector = cls(placeholders)
        streams = list(connector.streams())
        connector.close()
    except (SpojkaError, KeyError, TypeError, ValueError, OSError):
        streams = []
    overrides = {
        name
        for name in ("write", "verify_webhook")
        if getattr(cls, name) is not getattr(Connector, name)
    }
    return {
        "entities": sorted({s.entity for s in streams}),
        "streams": [s.name for s in streams],
        "read": bool(streams) or cls.read_page is not Connector.read_page,
        "write": "write" in overrides and (not streams or any(s.writable for s in streams)),
        "webhooks": "verify_webhook" in overrides,
        "deletes": any(s.supports_deletes for s in streams),
    }


@connectors_app.command("list")
def list_connectors() -> None:
    """Connector kinds installed (entry-point group spojka.connectors), with what each can do."""
    table = Table("kind", "entities", "read", "write", "webhooks", "deletes", "from")
    yes = {True: "yes", False: "-"}
    for kind, where in sorted(registry.available().items()):
        try:
            caps = capabilities(registry.connector_class(kind))
        except SpojkaError as exc:
            table.add_row(kind, f"[red]cannot load: {exc.message}[/red]", "", "", "", "", where)
            continue
        entities = ", ".join(caps["entities"]) or "(declared when configured)"  # type: ignore[arg-type]
        table.add_row(
            kind,
            entities,
            yes[bool(caps["read"])],
            yes[bool(caps["write"])],
            yes[bool(caps["webhooks"])],
            yes[bool(caps["deletes"])],
            where,
        )
    console.print(table)


@connections_app.command("test")
def test_connection(name: str = typer.Argument(..., help="Connection name.")) -> None:
    """Check reachability, credentials and permissions; say exactly what is wrong."""
    from spojka.sync.engine import SyncEngine

    app = instance()
    engine = SyncEngine(app.engine)
    try:
        runtime = engine.runtime(name)
        health = runtime.connector.health()
    finally:
        engine.close()
    latency = f" ({health.latency_ms:.0f} ms)" if health.latency_ms is not None else ""
    if health.ok:
        console.print(f"{name} ({runtime.kind}): ok — {health.detail}{latency}")
        return
    console.print(f"[red]{name} ({runtime.kind}): failed[/red] — {health.detail}")
    raise typer.Exit(1)
