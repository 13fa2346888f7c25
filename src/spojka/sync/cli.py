"""CLI of the sync engine: ``spojka sync …``, ``spojka dlq …``, ``spojka conflicts …``,
``spojka reconcile CONNECTION`` and ``spojka mapping check|preview``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from spojka.core.errors import ValidationError

console = Console(highlight=False, width=120)

app = typer.Typer(
    help="Sync engine: connections, polling runs, deliveries, health.", no_args_is_help=True
)
dlq_app = typer.Typer(help="Dead-letter queue: list, show, replay, discard.", no_args_is_help=True)
conflicts_app = typer.Typer(help="Ownership conflicts: list, show, resolve.", no_args_is_help=True)
mapping_app = typer.Typer(help="Mapping files: check and preview.", no_args_is_help=True)
reconcile_app = typer.Typer(help="Compare ids on both sides: deletes and drift.")


def _db() -> Engine:
    from spojka.core.db import make_engine, require_migrated
    from spojka.core.settings import load_settings

    settings = load_settings()
    url = settings.resolved_database_url
    engine = make_engine(url)
    require_migrated(engine, url)
    return engine


def _options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parse as JSON when they can (numbers, objects)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"option {pair!r} must look like key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


# -- spojka sync -------------------------------------------------------------------------------


@app.command("connect")
def connect(
    name: str = typer.Argument(..., help="Connection name, e.g. crm"),
    kind: str = typer.Option(..., "--kind", help="Connector kind (see `spojka sync kinds`)"),
    config: str = typer.Option("{}", "--config", help="Connector config as JSON"),
    option: list[str] = typer.Option([], "--option", "-o", help="Config key=value"),
    setting: list[str] = typer.Option([], "--setting", "-s", help="Sync setting key=value"),
    mapping: Path | None = typer.Option(None, "--mapping", help="Mapping YAML file"),
    actor: str = typer.Option("cli", "--actor", help="Who saves it (for the audit trail)"),
) -> None:
    """Create or update a connection (the mapping is checked first); audited."""
    from spojka.connectors import service as connections
    from spojka.sync import service

    cfg = json.loads(config)
    cfg.update(_options(option))
    text = mapping.read_text(encoding="utf-8") if mapping else None
    db = _db()
    existed = connections.exists(db=db, name=name)
    service.save_connection(
        db=db, name=name, kind=kind, config=cfg, settings=_options(setting), mapping_yaml=text
    )
    connections.record_saved(db=db, name=name, actor=actor, existed=existed)
    console.print(f"connection [bold]{name}[/bold] saved ({kind})")


@app.command("disconnect")
def disconnect(
    name: str = typer.Argument(..., help="Connection to remove"),
    force: bool = typer.Option(
        False,
        "--force",
        help="Remove even with pending deliveries, open dead letters or conflicts "
        "(dead letters are discarded, conflicts withdrawn)",
    ),
    forget_links: bool = typer.Option(
        False,
        "--forget-links",
        help="Also forget which of its records are which canonical records",
    ),
    actor: str = typer.Option("cli", "--actor"),
) -> None:
    """Remove a connection: syncing with it stops, canonical records and history stay."""
    from spojka.connectors import service

    removed = service.remove(
        db=_db(), name=name, actor=actor, force=force, forget_links=forget_links
    )
    parts = [
        f"{removed['cursors']} cursor(s)",
        f"{removed['deliveries_cancelled']} pending delivery(ies)",
        f"{removed['webhooks_dropped']} unprocessed webhook(s)",
        f"{removed['secrets_deleted']} stored secret(s)",
    ]
    if removed["dead_letters_discarded"] or removed["conflicts_withdrawn"]:
        parts.append(f"{removed['dead_letters_discarded']} dead letter(s) discarded")
        parts.append(f"{removed['conflicts_withdrawn']} conflict(s) withdrawn")
    console.print(f"connection [bold]{name}[/bold] removed: " + ", ".join(parts), soft_wrap=True)
    if forget_links:
        console.print(f"{removed['links_forgotten']} link(s) forgotten")
    else:
        console.print(
            f"{removed['links_kept']} link(s) kept: adding {name} again finds its records "
            "(--forget-links drops them)"
        )
    if removed["secrets_kept_in_use"]:
        console.print(
            f"{removed['secrets_kept_in_use']} stored secret(s) kept: another connection uses them"
        )


@app.command("kinds")
def kinds() -> None:
    """Connector kinds installed (entry points of group spojka.connectors)."""
    from spojka.connectors import registry

    for kind, where in sorted(registry.available().items()):
        console.print(f"{kind}\t{where}")


@app.command("connections")
def connections() -> None:
    """List configured connections."""
    from spojka.sync import service

    table = Table("name", "kind", "mapping", "settings")
    for c in service.list_connections(db=_db()):
        table.add_row(c["name"], c["kind"], c["mapping"] or "-", json.dumps(c["settings"]))
    console.print(table)


@app.command("own")
def own(
    target: str = typer.Argument(..., help="Entity or Entity.field, e.g. Account.ico"),
    owner: str = typer.Argument(..., help="Connection that is the source of truth"),
    reject: bool = typer.Option(
        False, "--reject", help="Reject non-owner changes instead of raising a conflict"
    ),
) -> None:
    """Declare who owns an entity or a field."""
    from spojka.sync import service

    entity, _, field = target.partition(".")
    service.set_owner(
        db=_db(),
        entity=entity,
        field=field or "*",
        owner=owner,
        on_violation="reject" if reject else "conflict",
    )
    console.print(f"{target} is owned by {owner}")


@app.command("run")
def run(
    connection: str = typer.Argument(..., help="Connection to poll"),
    stream: list[str] = typer.Option([], "--stream", help="Only these streams"),
) -> None:
    """Poll a connection from its checkpoint and deliver the changes to subscribers."""
    from spojka.sync.engine import SyncEngine

    engine = SyncEngine(_db())
    try:
        result = engine.run(connection, streams=stream or None)
    finally:
        engine.close()
    table = Table(
        "stream",
        "records",
        "created",
        "changed",
        "unchanged",
        "stale",
        "echo",
        "conflicts",
        "dlq",
        "rec/s",
        "cursor",
    )
    for r in result["streams"]:
        s = r.stats
        table.add_row(
            r.stream,
            str(r.records),
            str(s.created),
            str(s.applied - s.created),
            str(s.unchanged),
            str(s.stale),
            str(s.echoes),
            str(s.conflicts + s.rejected),
            str(s.dead_lettered),
            f"{r.records_per_s:,.0f}",
            r.cursor or "-",
        )
    console.print(table)
    for d in result["deliveries"]:
        console.print(
            f"→ {d.connection}: delivered {d.delivered}, skipped {d.skipped}, "
            f"retried {d.retried}, dead-lettered {d.dead_lettered}"
        )


@app.command("reset")
def reset(
    connection: str = typer.Argument(...),
    stream: str | None = typer.Option(None, "--stream"),
) -> None:
    """Full re-sync on the next run: forget the stream checkpoints (links stay)."""
    from spojka.sync import service

    count = service.reset_cursor(db=_db(), connection=connection, stream=stream)
    console.print(f"reset {count} checkpoint(s) of {connection}")


@app.command("deliver")
def deliver(connection: str = typer.Argument(..., help="Target connection")) -> None:
    """Write pending changes to a target (retries wait for their backoff)."""
    from spojka.sync.engine import SyncEngine

    engine = SyncEngine(_db())
    d = engine.deliver(connection)
    console.print(
        f"→ {d.connection}: delivered {d.delivered}, skipped {d.skipped}, "
        f"retried {d.retried}, dead-lettered {d.dead_lettered}"
    )


@app.command("webhooks")
def webhooks(limit: int = typer.Option(10_000, help="Events to process at most")) -> None:
    """Process stored webhook events (normally the API's background worker does it)."""
    import spojka.sync.webhooks as hooks
    from spojka.sync.engine import SyncEngine

    engine = SyncEngine(_db())
    done = hooks.process_pending(engine=engine, limit=limit)
    console.print(f"processed {done} webhook event(s)")


def _at(value: Any) -> str:
    """A time in UTC, as the other commands show times."""
    from datetime import UTC

    if value is None:
        return "-"
    return f"{value.astimezone(UTC) if value.tzinfo else value:%Y-%m-%d %H:%M:%S}"


def _polling_row(name: str, polling: dict[str, Any] | None) -> list[str]:
    """One row of the polling table: interval, last poll and its result, next poll."""
    if not polling or polling["interval_s"] is None:
        return [name, "on demand", _at(polling and polling["last_poll_at"]), "-", "-"]
    result = polling["last_outcome"] or "-"
    if polling["last_error"] and result != "automated":
        result = f"{result}: {polling['last_error'][:80]}"
    if polling["failures"] > 1:
        result += f" ({polling['failures']}x in a row)"
    return [
        name,
        f"{polling['interval_s']:g} s",
        _at(polling["last_poll_at"]),
        result,
        _at(polling["next_poll_at"]),
    ]


@app.command("status")
def status(connection: str | None = typer.Argument(None)) -> None:
    """Lag, records/s, errors, retries, DLQ depth and open conflicts per connection/stream;
    then the polling schedule: interval, last poll and its result, next poll (UTC)."""
    from spojka.sync import service

    db = _db()
    names = [connection] if connection else [c["name"] for c in service.list_connections(db=db)]
    polling = Table("connection", "poll every", "last poll", "result", "next poll")
    table = Table(
        "connection",
        "stream",
        "ok",
        "lag s",
        "rec/s",
        "total",
        "dlq",
        "retries",
        "pending",
        "conflicts",
    )
    for name in names:
        h = service.health(db=db, connection=name)
        for s in h["streams"] or [
            {"stream": "-", "lag_s": None, "records_per_s": 0, "records_total": 0}
        ]:
            table.add_row(
                name,
                s["stream"],
                "yes" if h["ok"] else "NO",
                "-" if s["lag_s"] is None else f"{s['lag_s']:.0f}",
                f"{s['records_per_s']:,.0f}",
                str(s["records_total"]),
                str(h["dlq_depth"]),
                str(h["retries"]),
                str(h["pending_deliveries"]),
                str(h["conflicts_open"]),
            )
        polling.add_row(*_polling_row(name, h["polling"]))
    console.print(table)
    console.print(polling)


# -- spojka dlq --------------------------------------------------------------------------------


@dlq_app.command("list")
def dlq_list(
    connection: str | None = typer.Option(None, "--connection"),
    all_: bool = typer.Option(False, "--all", help="Also replayed and discarded items"),
) -> None:
    from spojka.sync import service

    table = Table("id", "connection", "stream", "dir", "external id", "error", "attempts", "status")
    for d in service.list_dead_letters(
        db=_db(), connection=connection, status=None if all_ else "open", limit=1000
    ):
        table.add_row(
            str(d.id),
            d.connection,
            d.stream or "-",
            d.direction,
            d.external_id or d.canonical_id or "-",
            d.error[:60],
            str(d.attempts),
            d.status,
        )
    console.print(table)


@dlq_app.command("show")
def dlq_show(item_id: int) -> None:
    from spojka.sync import service

    console.print_json(service.get_dead_letter(db=_db(), item_id=item_id).model_dump_json())


@dlq_app.command("replay")
def dlq_replay(
    ids: list[int] = typer.Argument(None, help="Item ids (default: all open)"),
    connection: str | None = typer.Option(None, "--connection"),
) -> None:
    """Replay items idempotently (after fixing the mapping, or once the target is back)."""
    from spojka.sync import service

    result = service.replay_dead_letters(db=_db(), ids=ids or None, connection=connection)
    console.print(f"replayed {result['replayed']}, failed again {result['failed_again']}")


@dlq_app.command("discard")
def dlq_discard(ids: list[int], reason: str = typer.Option(None, "--reason")) -> None:
    from spojka.sync import service

    count = service.discard_dead_letters(db=_db(), ids=ids, reason=reason)
    console.print(f"discarded {count}")


# -- spojka conflicts -------------------------------------------------------------------------


@conflicts_app.command("list")
def conflicts_list(
    all_: bool = typer.Option(False, "--all", help="Also resolved/rejected"),
) -> None:
    from spojka.sync import service

    table = Table(
        "id", "entity", "record", "field", "kind", "current (source)", "incoming (source)", "status"
    )
    for c in service.list_conflicts(db=_db(), status=None if all_ else "open", limit=1000):
        table.add_row(
            str(c.id),
            c.entity,
            c.canonical_id[:8],
            c.field,
            c.kind,
            f"{c.current_value!r} ({c.current_source})",
            f"{c.incoming_value!r} ({c.incoming_system})",
            c.status,
        )
    console.print(table)


@conflicts_app.command("show")
def conflicts_show(conflict_id: int) -> None:
    from spojka.sync import service

    console.print_json(service.get_conflict(db=_db(), conflict_id=conflict_id).model_dump_json())


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: int,
    pick: str | None = typer.Option(None, "--pick", help="current or incoming"),
    value: str | None = typer.Option(None, "--value", help="Enter a value (JSON or text)"),
    actor: str = typer.Option("cli", "--actor"),
    reason: str | None = typer.Option(None, "--reason"),
) -> None:
    """Resolve a conflict; the decision is audited and written to every linked system."""
    from spojka.sync import service

    entered: Any = None
    if value is not None:
        try:
            entered = json.loads(value)
        except ValueError:
            entered = value
    c = service.resolve_conflict(
        db=_db(), conflict_id=conflict_id, pick=pick, value=entered, actor=actor, reason=reason
    )
    console.print(f"conflict {c.id} resolved: {c.field} = {c.resolution['value']!r}")


# -- spojka reconcile ---------------------------------------------------------------------------


@reconcile_app.callback(invoke_without_command=True)
def reconcile(
    connection: str = typer.Argument(..., help="Connection to compare"),
    apply: bool = typer.Option(False, "--apply", help="Mark records deleted in the source"),
) -> None:
    """List ids on both sides and report counts per entity."""
    from spojka.sync import service

    table = Table(
        "entity", "stream", "remote", "linked", "in step", "deleted in source", "not synced"
    )
    for r in service.reconcile(db=_db(), connection=connection, apply=apply):
        table.add_row(
            r["entity"],
            r["stream"],
            str(r["remote"]),
            str(r["linked"]),
            str(r["in_step"]),
            str(r["deleted_in_source"]),
            str(r["not_synced"]),
        )
    console.print(table)


# -- spojka mapping ---------------------------------------------------------------------------


@mapping_app.command("check")
def mapping_check(file: Path) -> None:
    """Check a mapping file; errors name the file, line and field."""
    from spojka.sync.mapping import load_mapping

    mapping = load_mapping(file)
    streams = ", ".join(f"{s.stream}→{s.entity}" for s in mapping.streams.values())
    console.print(f"{file}: ok, {mapping.label}: {streams}")


@mapping_app.command("preview")
def mapping_preview(
    file: Path,
    sample: int = typer.Option(5, "--sample", help="Records per stream"),
    path: Path | None = typer.Option(None, "--path", help="Read a folder with the file connector"),
    connection: str | None = typer.Option(
        None, "--connection", help="Read a configured connection (default: the mapping's name)"
    ),
    delimiter: str = typer.Option(",", "--delimiter"),
) -> None:
    """Show the first N source records before and after mapping and validation."""
    from spojka.connectors import registry
    from spojka.sync.mapping import RecordError, load_mapping

    mapping = load_mapping(file)
    if path is not None:
        connector = registry.create("file", {"path": str(path), "delimiter": delimiter})
    else:
        from spojka.sync.engine import SyncEngine

        connector = SyncEngine(_db()).runtime(connection or mapping.name).connector
    for sm in mapping.streams.values():
        if sm.direction == "out":
            continue
        stream = connector.stream(sm.stream)
        page = connector.read_page(stream, since=None, page_token=None)
        console.print(f"[bold]{sm.stream} → {sm.entity} ({mapping.label})[/bold]")
        for raw in page.records[:sample]:
            try:
                after: Any = sm.to_canonical(raw)
            except RecordError as exc:
                after = {"ERROR": exc.message}
            console.print("  before:", json.dumps(raw, ensure_ascii=False, default=str))
            console.print("  after: ", json.dumps(after, ensure_ascii=False, default=str))
    connector.close()
