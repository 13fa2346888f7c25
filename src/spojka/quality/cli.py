"""``spojka quality …``: de-duplicate files, review candidate pairs, report data quality."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from spojka.core.errors import ValidationError
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
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Processes normalising the values (default: the cores there are, at most 4).",
    ),
) -> None:
    """Cluster the rows of FILE that describe the same company or person.

    Writes ``id,cluster_id`` for every input row (a row without duplicates is its own
    cluster, named by its id) and prints records, candidate pairs compared, clusters and
    seconds. Uses the product's matching code and default thresholds.
    """
    explicit = parse_column_options(column) if column else None
    # no spinner: its refresh thread would keep the normalising workers from forking
    console.print("matching…", style="dim", highlight=False)
    result, mapping, ids = dedupe_file(
        file, entity=entity, id_column=id_column, columns=explicit, workers=workers
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


# --------------------------------------------------------------------------- stored records


def _sessions() -> sessionmaker[Session]:
    from spojka.core.db import make_engine, require_migrated, session_factory
    from spojka.core.settings import load_settings

    url = load_settings().resolved_database_url
    engine = make_engine(url)
    require_migrated(engine, url)
    return session_factory(engine)


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


@app.command("load")
def load_command(
    file: Path = typer.Argument(..., help="CSV export of one system."),
    entity: str = typer.Option(..., "--entity", help="account or contact."),
    system: str = typer.Option(..., "--system", help="The system the file comes from: crm…"),
    id_column: str = typer.Option(..., "--id-column", help="Column with the system's id."),
    column: list[str] = typer.Option([], "--column", help="FIELD=CSVCOLUMN, as in dedupe."),
    updated_column: str | None = typer.Option(
        None, "--updated-column", help="Column with the last change date (survivorship)."
    ),
    ares: bool = typer.Option(
        False, "--ares", help="Also file what ARES says about each IČO (cached; optional)."
    ),
    ares_url: str | None = typer.Option(None, "--ares-url", help="ARES REST base URL."),
) -> None:
    """Check, store and match every row of FILE against the stored golden records."""
    from spojka.core.db import transaction
    from spojka.quality import service
    from spojka.quality.dedupe_csv import iter_rows, read_headers
    from spojka.quality.fields import resolve_mapping
    from spojka.quality.normalize import InvalidValue, normalize_date

    headers = read_headers(file)
    mapping = resolve_mapping(
        entity, headers, id_column=id_column, explicit=parse_column_options(column) or None
    )
    if updated_column and updated_column not in headers:
        raise ValidationError(f"column {updated_column!r} is not in the file")
    sessions = _sessions()
    counts: dict[str, int] = {}
    register = None
    if ares and entity == "account":
        from spojka.core.settings import load_settings
        from spojka.quality.ares import DEFAULT_BASE_URL, AresClient

        register = AresClient(
            cache_dir=load_settings().data_dir / "cache" / "ares",
            base_url=ares_url or DEFAULT_BASE_URL,
        )
    with transaction(sessions) as db:
        index = service.load_index(db_session=db, entity=entity)
        for row in iter_rows(file):
            updated = None
            if updated_column and row.get(updated_column):
                try:
                    day = normalize_date(row[updated_column])
                    updated = datetime(day.year, day.month, day.day, tzinfo=UTC)
                except InvalidValue:
                    updated = None
            outcome = service.ingest(
                db_session=db,
                entity=entity,
                system=system,
                external_id=row[id_column],
                values={f: row.get(c) for f, c in mapping.items()},
                updated_at=updated,
                index=index,
            )
            counts[outcome.decision] = counts.get(outcome.decision, 0) + 1
            if register is not None and outcome.decision != "updated":
                enriched = service.enrich_from_ares(
                    db_session=db, record=outcome.record, client=register, index=index
                )
                key = f"ares {enriched.status}"
                counts[key] = counts.get(key, 0) + 1
    if register is not None:
        register.close()
    console.print(
        ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "no rows"
    )


@app.command("review")
def review_command(
    entity: str | None = typer.Option(None, "--entity", help="Only this entity."),
    limit: int = typer.Option(10, "--limit", help="Pairs to show."),
    accept: int | None = typer.Option(None, "--accept", help="Accept review ID: merge the pair."),
    reject: int | None = typer.Option(None, "--reject", help="Reject review ID: keep apart."),
    split: int | None = typer.Option(
        None, "--split", help="Split record ID out of its cluster (un-merge)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (goes to the audit log)."),
    actor: str | None = typer.Option(None, "--actor", help="Who decides (default: cli:$USER)."),
) -> None:
    """Show candidate pairs with agreeing and disagreeing fields; accept, reject or split."""
    from spojka.core.db import transaction
    from spojka.quality import service

    sessions = _sessions()
    with transaction(sessions) as db:
        if accept is not None or reject is not None:
            review_id = accept if accept is not None else reject
            assert review_id is not None
            event = service.decide_review(
                db_session=db,
                review_id=review_id,
                decision="accept" if accept is not None else "reject",
                actor=_actor(actor),
                reason=reason,
            )
            verb = "accepted" if accept is not None else "rejected"
            suffix = (
                f" (merge event {event.id}; undo with `spojka quality undo {event.id}`)"
                if event is not None
                else ""
            )
            console.print(f"review {review_id} {verb}{suffix}", highlight=False)
            return
        if split is not None:
            event = service.split_records(
                db_session=db, record_ids=[split], actor=_actor(actor), reason=reason
            )
            console.print(
                f"record {split} split off (event {event.id}; undo with "
                f"`spojka quality undo {event.id}`)",
                highlight=False,
            )
            return
        queue = service.open_reviews(db_session=db, entity=entity, limit=limit)
        if not queue:
            console.print("no candidate pairs waiting for review")
            return
        for review, left, right in queue:
            table = Table(
                title=f"review {review.id} · {review.entity} · score {review.score:.1f}",
                title_justify="left",
            )
            table.add_column("field")
            table.add_column(f"{left.system}:{left.external_id} (record {left.id})")
            table.add_column(f"{right.system}:{right.external_id} (record {right.id})")
            table.add_column("agreement")
            table.add_column("weight", justify="right")
            shown: set[str] = set()
            for item in review.explanation:
                mark = "✔" if item["weight"] > 0 else ("✘" if item["weight"] < 0 else "·")
                name = item["field"]
                shown.add(name)
                # people judge what the systems hold, not the matcher's folded keys
                table.add_row(
                    name,
                    str(left.values.get(name) or item["left"] or ""),
                    str(right.values.get(name) or item["right"] or ""),
                    f"{mark} {item['level']}",
                    f"{item['weight']:+.1f}",
                )
            for name in sorted((set(left.values) | set(right.values)) - shown):
                table.add_row(
                    name, str(left.values.get(name, "")), str(right.values.get(name, "")), "", ""
                )
            console.print(table)
        console.print(
            "decide with: spojka quality review --accept ID | --reject ID | --split RECORD_ID"
        )


@app.command("undo")
def undo_command(
    event_id: int = typer.Argument(..., help="Merge or split event to reverse."),
    reason: str | None = typer.Option(None, "--reason"),
    actor: str | None = typer.Option(None, "--actor"),
) -> None:
    """Reverse a merge or split exactly (refused when the clusters changed since)."""
    from spojka.core.db import transaction
    from spojka.quality import service

    with transaction(_sessions()) as db:
        event = service.undo(db_session=db, event_id=event_id, actor=_actor(actor), reason=reason)
        console.print(f"event {event_id} undone (event {event.id})", highlight=False)


@app.command("report")
def report_command(
    entity: str | None = typer.Option(None, "--entity", help="Only this entity."),
    limit: int = typer.Option(15, "--limit", help="Worst records to list."),
    snapshot: bool = typer.Option(
        True, "--snapshot/--no-snapshot", help="Store today's scores for the trend."
    ),
) -> None:
    """Data-quality scores per entity and system, the trend, and the worst records first."""
    from spojka.core.db import transaction
    from spojka.quality import service
    from spojka.quality.validate import summarize, worst_first

    with transaction(_sessions()) as db:
        records = service.scored_records(db_session=db, entity=entity)
        if not records:
            console.print("no records stored yet: load some with `spojka quality load`")
            return
        groups = service.snapshot_scores(db_session=db) if snapshot else summarize(records)
        history = service.score_history(db_session=db, entity=entity)
    table = Table(title="score per entity and system (worst first)", title_justify="left")
    for name in ("entity", "system", "records", "average score", "with errors", "trend"):
        table.add_column(name, justify="right" if name != "entity" else "left")
    for group in groups:
        if entity and group.entity != entity:
            continue
        past = [
            h.average
            for h in reversed(history)
            if (h.entity, h.system) == (group.entity, group.system)
        ]
        trend = " → ".join(f"{v:.0f}" for v in past[-5:]) if past else ""
        table.add_row(
            group.entity,
            group.system,
            str(group.records),
            f"{group.average:.1f}",
            str(group.invalid),
            trend,
        )
    console.print(table)
    worst = Table(title=f"worst {limit} records", title_justify="left")
    for name in ("record", "score", "problems"):
        worst.add_column(name)
    for record in worst_first(records, limit):
        problems = "; ".join(f"[{p.severity}] {p.message}" for p in record.problems)
        worst.add_row(f"{record.entity} {record.record_id}", f"{record.score:.0f}", problems)
    console.print(worst)


@app.command("enrich")
def enrich_command(
    ico: str = typer.Argument(..., help="IČO to look up in ARES."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="ARES REST base URL (default: the public one)."
    ),
) -> None:
    """Look an IČO up in ARES (cached in the data folder): legal name, seat, DIČ, status."""
    from spojka.core.settings import load_settings
    from spojka.quality.ares import DEFAULT_BASE_URL, AresClient

    cache = load_settings().data_dir / "cache" / "ares"
    with AresClient(cache_dir=cache, base_url=base_url or DEFAULT_BASE_URL) as client:
        company = client.lookup(ico)
    if company is None:
        console.print(f"ARES does not know IČO {ico}")
        return
    table = Table(show_header=False)
    for name, value in (
        ("IČO", company.ico),
        ("name", company.name),
        ("DIČ", company.dic or ""),
        ("seat", company.address or ""),
        ("status", "active" if company.active else f"dissolved {company.dissolved}"),
    ):
        table.add_row(name, value)
    console.print(table)


@app.command("propagate")
def propagate_command(
    entity: str = typer.Option("account", "--entity", help="account or contact."),
    actor: str | None = typer.Option(None, "--actor", help="Who propagates (default: cli:$USER)."),
    deliver: bool = typer.Option(
        True, "--deliver/--queue-only", help="Deliver now, or only queue the sync writes."
    ),
    show_skipped: bool = typer.Option(
        False, "--show-skipped", help="List every skipped field, not only the counts."
    ),
) -> None:
    """Send golden values back to the systems that OWN each field, through the sync engine.

    A field a system does not own is never written ("not owned: skipped"). Two records of
    one system in one cluster are linked and flagged as duplicates, never deleted. Running
    it again writes nothing new.
    """
    from spojka.core.db import make_engine, require_migrated
    from spojka.core.settings import load_settings
    from spojka.quality.propagate import propagate

    url = load_settings().resolved_database_url
    db = make_engine(url)
    require_migrated(db, url)
    with console.status("propagating…"):
        result = propagate(db=db, entity=entity, actor=_actor(actor), deliver=deliver)
    table = Table(title="changes", show_header=True, header_style="bold")
    for name in ("system", "record", "field", "was", "now", "status"):
        table.add_column(name)
    for o in result.outcomes:
        if o.status == "changed" or show_skipped:
            table.add_row(
                o.system, o.external_id, o.field, str(o.current or ""), str(o.golden or ""),
                o.status,
            )  # fmt: skip
    if table.row_count:
        console.print(table)
    counts: dict[str, int] = {}
    for o in result.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    console.print(
        "fields: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none differ"),
        highlight=False,
    )
    for flag in result.duplicates:
        state = "flagged" if flag.new else "already flagged"
        console.print(
            f"duplicate in {flag.system}: {flag.external_id} = {flag.survivor_external_id} "
            f"(cluster {flag.cluster_id}) — {state}, kept",
            highlight=False,
        )
    for d in result.deliveries:
        console.print(
            f"{d.connection}: delivered {d.delivered}, skipped {d.skipped}, "
            f"retrying {d.retried}, dead-lettered {d.dead_lettered}",
            highlight=False,
        )
