"""De-duplicate any CSV file: map its columns, cluster its rows, write ``id,cluster_id``."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from spojka.core.errors import ValidationError
from spojka.quality.clustering import DEFAULT_SETTINGS, DedupeResult, MatchSettings, dedupe
from spojka.quality.fields import resolve_mapping


def parse_column_options(options: Sequence[str]) -> dict[str, str]:
    """``["name=Firma", "ico=IČ"]`` → ``{"name": "Firma", "ico": "IČ"}``."""
    mapping: dict[str, str] = {}
    for option in options:
        field, sep, column = option.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ValidationError(f"--column {option!r} must look like FIELD=CSVCOLUMN")
        mapping[field.strip()] = column.strip()
    return mapping


def _sniff_dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a CSV file (UTF-8 with or without BOM; ``,`` ``;`` tab or ``|`` separated)."""
    if not path.is_file():
        raise ValidationError(f"file {str(path)!r} does not exist")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        reader = csv.DictReader(handle, dialect=_sniff_dialect(sample))
        headers = [h for h in (reader.fieldnames or []) if h is not None]
        rows = [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]
    if not headers:
        raise ValidationError(f"file {str(path)!r} has no header row")
    return headers, rows


def dedupe_file(
    path: Path,
    *,
    entity: str,
    id_column: str,
    columns: Mapping[str, str] | None = None,
    settings: MatchSettings = DEFAULT_SETTINGS,
    progress: Callable[[int], None] | None = None,
) -> tuple[DedupeResult, dict[str, str], list[str]]:
    """Cluster a CSV file's rows; returns the result, the mapping used and the row ids in order."""
    headers, rows = read_csv(path)
    mapping = resolve_mapping(entity, headers, id_column=id_column, explicit=columns)
    ids = [row[id_column] for row in rows]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicate = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise ValidationError(f"id column {id_column!r} is not unique: {duplicate!r} repeats")
    records = [
        (row[id_column], {field: row.get(column) for field, column in mapping.items()})
        for row in rows
    ]
    result = dedupe(entity, records, settings, progress=progress)
    return result, mapping, ids


def write_clusters(path: Path, ids: Sequence[str], cluster_of: Mapping[str, str]) -> None:
    """``id,cluster_id`` for every input row, in input order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cluster_id"])
        for record_id in ids:
            writer.writerow([record_id, cluster_of[record_id]])
