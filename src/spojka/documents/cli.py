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
) -> None:
    """Store each file once (by content hash) in the data folder, read it and record it.
    The same invoice sent again as another file (same supplier + number + total) is flagged.

    Example: spojka documents add inbox/*.pdf
    """
    from spojka.cli.context import instance
    from spojka.core.db import transaction
    from spojka.documents.service import add_document

    spojka = instance()
    console = _console()
    failed = 0
    for path in files:
        try:
            with transaction(spojka.sessions) as session:
                result = add_document(
                    session=session, data_dir=spojka.settings.data_dir, path=path, actor=actor
                )
                doc = result.document
                if not result.new_file:
                    console.print(f"= {path}: already stored as document {doc.id}")
                    continue
                status = (
                    f"document {doc.id} ({result.extraction.source if result.extraction else '?'})"
                )
                if result.duplicate_of is not None:
                    status += f" [yellow]duplicate of document {result.duplicate_of.id}[/yellow]"
                console.print(f"+ {path}: {status}")
                for f in result.failures:
                    console.print(f"    [red]{type(f).__name__}[/red] {f.message}")
        except Exception as exc:
            failed += 1
            _err(_error_line(path, exc))
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
