"""``spojka quality …``: de-duplicate files, review candidate pairs, report data quality."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from spojka.quality.dedupe_csv import dedupe_file, parse_column_options, write_clusters
from spojka.quality.fields import ENTITY_FIELDS

app = typer.Typer(
    help="Data quality and identity: normalise, validate, de-duplicate, merge.",
    no_args_is_help=True,
)
console = Console()

_AUTO_MAP_HELP = (
    "Map a canonical field onto a CSV column, e.g. --column name=Firma --column ico=IČ. "
    "Without any --column, columns are mapped by their header: name/název/firma → name, "
    "ičo/ič/ico → ico, dič/ič dph/vat → dic, e-mail/email → email, telefon/phone → phone, "
    "web/website/domain → domain, ulice/street/address → street, město/city/obec → city, "
    "psč/zip/postcode → zip, jméno/first_name/given_name → first_name, příjmení/surname → "
    "last_name, datum narození/dob/date_of_birth → birth_date (headers compared without case "
    "and diacritics)."
)


@app.command("dedupe")
def dedupe_command(
    file: Path = typer.Argument(..., help="CSV file to de-duplicate (UTF-8, header row)."),
    entity: str = typer.Option(..., "--entity", help="account or contact."),
    id_column: str = typer.Option(..., "--id-column", help="Column with a unique row id."),
    column: list[str] = typer.Option([], "--column", help=_AUTO_MAP_HELP),
    out: Path = typer.Option(..., "--out", help="Where to write id,cluster_id."),
) -> None:
    """Cluster the rows of FILE that describe the same company or person.

    Writes ``id,cluster_id`` for every input row (a row without duplicates is its own
    cluster, named by its id) and prints records, candidate pairs compared, clusters and
    seconds. Uses the product's matching code and default thresholds.
    """
    explicit = parse_column_options(column) if column else None
    with console.status("matching…"):
        result, mapping, ids = dedupe_file(
            file, entity=entity, id_column=id_column, columns=explicit
        )
    write_clusters(out, ids, result.cluster_of)
    mapped = ", ".join(f"{field}←{col}" for field, col in mapping.items())
    console.print(f"columns: {mapped}", highlight=False)
    table = Table(show_header=True, header_style="bold")
    for name in ("records", "candidate pairs compared", "clusters", "for review", "seconds"):
        table.add_column(name, justify="right")
    table.add_row(
        str(result.records),
        str(result.pairs_compared),
        str(result.clusters),
        str(len(result.review_links)),
        f"{result.seconds:.2f}",
    )
    console.print(table)
    console.print(f"wrote {out}", highlight=False)


@app.command("fields")
def fields_command(entity: str = typer.Argument("account")) -> None:
    """List the canonical fields an entity can be matched on."""
    for name in ENTITY_FIELDS.get(entity, ()):
        console.print(name)
