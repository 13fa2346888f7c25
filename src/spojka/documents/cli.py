"""``spojka documents``: read supplier invoices, store them once, check them, teach corrections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from spojka.core.errors import SpojkaError
from spojka.documents.checks import InvoiceCheckFailed
from spojka.documents.models import HEADER_FIELDS, Extraction

app = typer.Typer(
    help="Supplier invoices: read ISDOC / Factur-X / UBL, PDF text and scans; check; store.",
    no_args_is_help=True,
)

FILES = typer.Argument(
    ..., exists=False, help="Invoice files: .isdoc/.isdocx/.xml/.pdf/.png/.jpg/.tif"
)


def _console() -> Any:
    from spojka.cli.context import console

    return console


def _quiet_logs() -> None:
    """Logs go to stderr and only from warnings on, so stdout stays pure JSON."""
    from spojka.core.logging import configure_logging

    configure_logging("warning", "json")


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _error_line(path: Path, exc: Exception) -> str:
    message = exc.message if isinstance(exc, SpojkaError) else f"{type(exc).__name__}: {exc}"
    return f"{path}: {message}"


def _err(text: str) -> None:
    typer.echo(f"error: {text}", err=True)


def _table(ex: Extraction) -> Table:
    out = ex.to_output()
    table = Table(title=f"{ex.file}  [{ex.source}{'/' + ex.format if ex.format else ''}]")
    table.add_column("field")
    table.add_column("value")
    table.add_column("source")
    table.add_column("confidence", justify="right")
    for path in HEADER_FIELDS:
        value: Any = out
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        info = out["fields"].get(path, {})
        table.add_row(
            path,
            "—" if value is None else str(value),
            info.get("source", ""),
            f"{info['confidence']:.2f}" if "confidence" in info else "",
        )
    table.add_row("lines", str(len(out["lines"])), "", "")
    table.add_row("vat_breakdown", str(len(out["vat_breakdown"])), "", "")
    return table


@app.command("extract")
def extract(
    files: list[Path] = FILES,
    output_format: str = typer.Option(
        "json", "--format", "-f", help="json (one object per file; an array for several) or table"
    ),
) -> None:
    """Read invoices and print their fields; a file that cannot be read gets an error entry.

    Example: spojka documents extract faktura.pdf FV2025-001.isdoc --format json
    """
    from spojka.documents.reader import extract_file

    _quiet_logs()
    if output_format not in ("json", "table"):
        raise typer.BadParameter("--format must be json or table")
    results: list[dict[str, Any]] = []
    failed = 0
    for path in files:
        try:
            ex = extract_file(path)
        except Exception as exc:  # one bad file must not stop the others
            failed += 1
            _err(_error_line(path, exc))
            results.append({"file": str(path), "error": _error_line(path, exc).split(": ", 1)[1]})
            continue
        if output_format == "table":
            _console().print(_table(ex))
        results.append(ex.to_output())
    if output_format == "json":
        _echo_json(results[0] if len(files) == 1 else results)
    if failed:
        raise typer.Exit(1)


def _failure_dict(f: InvoiceCheckFailed) -> dict[str, Any]:
    return {"check": type(f).__name__, "code": f.code, "field": f.field, "message": f.message}


@app.command("check")
def check(
    file: Path = typer.Argument(..., help="One invoice file"),
    output_format: str = typer.Option("table", "--format", "-f", help="table or json"),
    use_db: bool = typer.Option(
        True, "--db/--no-db", help="Also look for a duplicate among stored documents"
    ),
) -> None:
    """Read one invoice and run every check (arithmetic, VAT rates, IČO/DIČ, IBAN, dates,
    duplicate). Exit code 1 when any check fails.

    Example: spojka documents check faktura.pdf
    """
    from spojka.documents.reader import extract_file
    from spojka.documents.service import check_invoice

    _quiet_logs()
    ex = extract_file(file)
    failures: list[InvoiceCheckFailed]
    note = None
    if use_db:
        try:
            from spojka.cli.context import instance

            spojka = instance()
        except SpojkaError as exc:
            note = f"duplicate check skipped: {exc.message}"
            failures = check_invoice(session=None, invoice=ex.invoice)
        else:
            with spojka.sessions() as session:
                failures = check_invoice(session=session, invoice=ex.invoice)
    else:
        failures = check_invoice(session=None, invoice=ex.invoice)
    if output_format == "json":
        _echo_json(
            {
                "file": str(file),
                "ok": not failures,
                "failures": [_failure_dict(f) for f in failures],
                "note": note,
            }
        )
    else:
        console = _console()
        if note:
            console.print(f"[yellow]{note}[/yellow]")
        if not failures:
            console.print(f"[green]ok[/green] {file}: all checks passed ({ex.source})")
        for f in failures:
            console.print(f"[red]{type(f).__name__}[/red] {f.message}")
    if failures:
        raise typer.Exit(1)


@app.command("add")
def add(
    files: list[Path] = FILES,
    actor: str = typer.Option("cli", help="Who adds the documents (kept in the version record)"),
    flow: bool = typer.Option(
        True, "--flow/--no-flow", help="Start the documents.ap_intake run (--no-flow: only store)"
    ),
) -> None:
    """Store each file once (by content hash), read it and start its AP run.

    A worker (`spojka worker` or `spojka serve`) carries the run out. The same invoice sent
    again as another file (same supplier + number + total) is flagged.

    Example: spojka documents add inbox/*.pdf
    """
    from spojka.cli.context import instance
    from spojka.documents.intake import take_in

    spojka = instance()
    console = _console()
    failed = 0
    for path in files:
        try:
            taken = take_in(spojka, path, actor=actor, start_flow=flow)
        except Exception as exc:
            failed += 1
            _err(_error_line(path, exc))
            continue
        result = taken.result
        run = f"  run {taken.workflow_id}" if taken.workflow_id else ""
        if not result.new_file:
            console.print(
                f"= {path}: already stored as document {taken.document_id}{run}", soft_wrap=True
            )
            continue
        source = result.extraction.source if result.extraction else "?"
        status = f"document {taken.document_id} ({source})"
        if result.duplicate_of is not None:
            status += f" [yellow]duplicate of document {result.duplicate_of.id}[/yellow]"
        console.print(f"+ {path}: {status}{run}", soft_wrap=True)
        for f in result.failures:
            console.print(f"    [red]{type(f).__name__}[/red] {f.message}")
    if failed:
        raise typer.Exit(1)


@app.command("correct")
def correct(
    document_id: int = typer.Argument(..., help="Stored document id"),
    values: list[str] = typer.Argument(..., help="FIELD=VALUE, e.g. variable_symbol=2025001"),
    actor: str = typer.Option(..., help="Who corrects (audited)"),
    reason: str = typer.Option(None, help="Why"),
) -> None:
    """Correct fields of a stored document; a new version is kept and the next invoice from
    the same supplier is read with what this correction teaches.

    Example: spojka documents correct 12 variable_symbol=2025001 --actor jana
    """
    from spojka.cli.context import instance
    from spojka.core.db import transaction
    from spojka.core.errors import ValidationError
    from spojka.documents.service import correct_document

    corrections = {}
    for item in values:
        if "=" not in item:
            raise ValidationError(f"{item!r}: write FIELD=VALUE")
        key, value = item.split("=", 1)
        corrections[key.strip()] = value.strip()
    spojka = instance()
    with transaction(spojka.sessions) as session:
        version, hints = correct_document(
            session=session,
            document_id=document_id,
            corrections=corrections,
            actor=actor,
            reason=reason,
        )
        console = _console()
        console.print(f"document {document_id}: version {version.version} saved")
        for h in hints:
            console.print(
                f"  learned for supplier {h.supplier_key}: "
                f"{h.field} {h.kind} {h.value!r} (v{h.version})"
            )


@app.command("hints")
def hints(
    supplier: str = typer.Argument(..., help="Supplier IČO (or VAT id when it has no IČO)"),
    history: bool = typer.Option(False, "--history", help="Also show replaced versions"),
) -> None:
    """What people taught about one supplier's invoices (newest version per field is used).

    Example: spojka documents hints 25097563 --history
    """
    import sqlalchemy as sa

    from spojka.cli.context import instance
    from spojka.documents.models import SupplierHint

    spojka = instance()
    with spojka.sessions() as session:
        query = sa.select(SupplierHint).where(SupplierHint.supplier_key == supplier)
        if not history:
            query = query.where(SupplierHint.active.is_(True))
        rows = list(session.scalars(query.order_by(SupplierHint.field, SupplierHint.version)))
    table = Table(title=f"hints for supplier {supplier}")
    for column in ("field", "version", "kind", "value", "active", "by", "document"):
        table.add_column(column)
    for h in rows:
        table.add_row(
            h.field,
            str(h.version),
            h.kind,
            h.value,
            "yes" if h.active else "no",
            h.actor,
            str(h.document_id or ""),
        )
    _console().print(table)


@app.command("exceptions")
def exceptions(
    output_format: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """Documents waiting for a person: what failed and which decision waits.

    Example: spojka documents exceptions
    """
    from spojka.cli.context import instance
    from spojka.documents.worklist import list_exceptions

    spojka = instance()
    with spojka.sessions() as session:
        items = [item.as_dict() for item in list_exceptions(session)]
    if output_format == "json":
        _echo_json(items)
        return
    table = Table(title=f"exceptions ({len(items)})")
    for column in ("doc", "file", "number", "supplier", "total", "decision", "role", "failed"):
        table.add_column(column)
    for item in items:
        checks = ", ".join(f["check"] for f in item["failed_checks"])
        match_line = next(
            (ln for ln in (item["summary"] or "").splitlines() if "order match" in ln), ""
        )
        table.add_row(
            str(item["document_id"]),
            item["filename"],
            item["number"] or "—",
            item["supplier"] or "—",
            f"{item['total_with_vat'] or '—'} {item['currency'] or ''}".strip(),
            str(item["decision_id"] or "—"),
            item["required_role"] or "—",
            "; ".join(p for p in (checks, match_line.split(": ", 1)[-1]) if p) or "—",
        )
    _console().print(table)


@app.command("show")
def show(
    document_id: int = typer.Argument(..., help="Stored document id"),
    output_format: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """A stored document: fields with value, source and confidence; failed checks; versions.

    Also the exception it waits in, if any.

    Example: spojka documents show 12
    """
    from spojka.cli.context import instance
    from spojka.documents.worklist import document_view

    spojka = instance()
    with spojka.sessions() as session:
        view = document_view(session, document_id)
    if output_format == "json":
        typer.echo(json.dumps(view, ensure_ascii=False, indent=2, default=str))
        return
    console = _console()
    table = Table(
        title=f"document {view['id']}  {view['filename']}  [{view['read_path']}]  "
        f"status {view['status']}  v{view['current_version']}"
    )
    for column in ("field", "value", "source", "confidence"):
        table.add_column(column)
    for row in view["fields"]:
        conf = row["confidence"]
        low = conf is not None and conf < 0.75
        table.add_row(
            row["field"],
            "—" if row["value"] is None else str(row["value"]),
            row["source"] or "",
            "" if conf is None else (f"[yellow]{conf:.2f}[/yellow]" if low else f"{conf:.2f}"),
        )
    table.add_row("lines", str(len(view["lines"])), "", "")
    console.print(table)
    if view["failed_checks"]:
        for f in view["failed_checks"]:
            console.print(f"[red]{f['check']}[/red] {f['message']}")
    else:
        console.print("[green]all checks pass[/green]")
    if view["exception"]:
        ex = view["exception"]
        console.print(
            f"waiting as an exception: decision {ex['decision_id']} (role {ex['required_role']})"
        )
        console.print(ex["summary"], highlight=False)
    for v in view["versions"]:
        console.print(f"  v{v['version']} {v['actor']}: {v['reason'] or ''}", highlight=False)


@app.command("release")
def release(
    document_id: int = typer.Argument(..., help="Stored document id waiting as an exception"),
    actor: str = typer.Option(..., help="Who releases (audited)"),
    role: str = typer.Option(
        "admin", help="Role to decide as (the CLI is trusted, like `spojka decisions approve`)"
    ),
    reason: str = typer.Option(None, help="Why it may go on"),
    minutes: float = typer.Option(None, help="Minutes spent on it (for the KPIs)"),
) -> None:
    """Release a document from the exception worklist; its run continues.

    The run reads the current (corrected) version: correct first with
    `spojka documents correct`.

    Example: spojka documents release 12 --actor petra --reason "cena dohodnuta" --minutes 4
    """
    from spojka.cli.context import instance
    from spojka.documents.worklist import release as release_document

    spojka = instance()
    done = release_document(
        spojka,
        document_id=document_id,
        actor=actor,
        role=role,
        reason=reason,
        minutes_spent=minutes,
    )
    _console().print(
        f"document {document_id} released (decision {done['decision_id']}, "
        f"run {done['workflow_id']})",
        soft_wrap=True,
    )


@app.command("watch")
def watch(
    folder: Path = typer.Argument(..., help="Folder to watch; processed/ and failed/ go inside"),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between scans"),
    once: bool = typer.Option(False, "--once", help="Scan once and exit"),
    flow: bool = typer.Option(True, "--flow/--no-flow", help="Start the AP run for each file"),
    worker: bool = typer.Option(
        False, "--worker", help="Also run the flows in this process (no separate worker needed)"
    ),
    settle: float = typer.Option(
        2.0, min=0.0, help="Leave files modified within this many seconds (still being written)"
    ),
) -> None:
    """Take in every invoice that appears in FOLDER (stored once, AP run started).

    Taken files move to FOLDER/processed; an unreadable one goes to FOLDER/failed with a
    NAME.reason.txt beside it.

    Example: spojka documents watch /srv/scan/faktury --worker
    """
    import signal
    import threading

    from spojka.cli.context import instance
    from spojka.documents import watch as watching

    spojka = instance()
    console = _console()

    def report(found: watching.ScanResult) -> None:
        for item in found.taken:
            state = "new" if item.new_file else "already stored"
            run = f", run {item.workflow_id}" if item.workflow_id else ""
            console.print(
                f"+ {item.name}: document {item.document_id} ({state}{run})", soft_wrap=True
            )
        for item in found.failed:
            console.print(
                f"[red]✗ {item.name}[/red]: {item.error} → {item.moved_to}", soft_wrap=True
            )

    if once:
        report(watching.scan(spojka, folder, start_flows=flow, settle_seconds=settle))
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if worker:
        from spojka.runtime import engine

        engine.launch(spojka.settings, executor_id="documents-watch")
    console.print(f"watching {folder} every {interval:g} s (Ctrl-C to stop)")
    try:
        watching.watch(
            spojka,
            folder,
            interval=interval,
            start_flows=flow,
            settle_seconds=settle,
            on_scan=report,
            stop=stop.is_set,
        )
    finally:
        if worker:
            from spojka.runtime import engine

            engine.shutdown()


@app.command("mail-intake")
def mail_intake(
    connection: str = typer.Option(..., "--connection", help="A mail connection (kind mail)"),
    flow: bool = typer.Option(True, "--flow/--no-flow", help="Start the AP run for each invoice"),
) -> None:
    """Take in the invoice attachments of a mailbox's new messages (stored once).

    The mailbox's checkpoint moves on, so nothing is read twice.

    Example: spojka documents mail-intake --connection faktury
    """
    from spojka.cli.context import instance
    from spojka.connectors.mail.connector import MailConnector
    from spojka.core.errors import ValidationError
    from spojka.documents.mail_intake import intake
    from spojka.sync.engine import SyncEngine

    spojka = instance()
    engine = SyncEngine(spojka.engine)
    try:
        connector = engine.runtime(connection).connector
        if not isinstance(connector, MailConnector):
            raise ValidationError(f"connection {connection!r} is not a mail connection")
        with connector._reader() as reader:
            result = intake(spojka, reader, start_flows=flow)
    finally:
        engine.close()
    console = _console()
    for item in result.items:
        state = "new" if item.new_file else "already stored"
        run = f", run {item.workflow_id}" if item.workflow_id else ""
        console.print(
            f"+ {item.filename}: document {item.document_id} ({state}{run})", soft_wrap=True
        )
    for name in result.skipped:
        console.print(f"  skipped {name} (not an invoice file)")
    console.print(
        f"{result.messages} message(s), {len(result.items)} invoice(s) taken in"
        + (f"; checkpoint {result.checkpoint}" if result.checkpoint else "")
    )
