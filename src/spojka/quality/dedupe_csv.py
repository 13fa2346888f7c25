"""De-duplicate any CSV file: map its columns, cluster its rows, write ``id,cluster_id``."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import TextIO

from spojka.core.errors import ValidationError
from spojka.quality.clustering import (
    DEFAULT_SETTINGS,
    DedupeResult,
    MatchSettings,
    cluster_features,
)
from spojka.quality.fields import resolve_mapping
from spojka.quality.matching import prepare_columns
from spojka.quality.parallel import default_workers


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


@contextmanager
def _opened(path: Path) -> Iterator[tuple[TextIO, type[csv.Dialect] | csv.Dialect]]:
    """The CSV file open (UTF-8 with or without BOM) and its separator, sniffed from the start."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        yield handle, _sniff_dialect(sample)


def read_headers(path: Path) -> list[str]:
    if not path.is_file():
        raise ValidationError(f"file {str(path)!r} does not exist")
    with _opened(path) as (handle, dialect):
        reader = csv.DictReader(handle, dialect=dialect)
        headers = [h for h in (reader.fieldnames or []) if h is not None]
    if not headers:
        raise ValidationError(f"file {str(path)!r} has no header row")
    return headers


def iter_rows(path: Path) -> Iterator[dict[str, str]]:
    with _opened(path) as (handle, dialect):
        for row in csv.DictReader(handle, dialect=dialect):
            yield {k: (v or "") for k, v in row.items() if k is not None}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a CSV file (UTF-8 with or without BOM; ``,`` ``;`` tab or ``|`` separated)."""
    if not path.is_file():
        raise ValidationError(f"file {str(path)!r} does not exist")
    with _opened(path) as (handle, dialect):
        reader = csv.DictReader(handle, dialect=dialect)
        headers = [h for h in (reader.fieldnames or []) if h is not None]
        rows = [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]
    if not headers:
        raise ValidationError(f"file {str(path)!r} has no header row")
    return headers, rows


def read_columns(path: Path, names: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The named columns of a CSV file, each as one list of values (row order kept).

    Reads like ``iter_rows``: a missing cell is ``""``, blank lines are skipped, and when a
    header repeats, its last column counts. Returns the headers and the columns.
    """
    with _opened(path) as (handle, dialect):
        reader = csv.reader(handle, dialect=dialect)
        headers = next(reader, [])
        where = {header: index for index, header in enumerate(headers)}
        rows = [row for row in reader if row]
    width = len(headers)
    for n, row in enumerate(rows):
        if len(row) < width:
            rows[n] = row + [""] * (width - len(row))
    columns = {name: list(map(itemgetter(where[name]), rows)) for name in names}
    return headers, columns


def dedupe_file(
    path: Path,
    *,
    entity: str,
    id_column: str,
    columns: Mapping[str, str] | None = None,
    settings: MatchSettings = DEFAULT_SETTINGS,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> tuple[DedupeResult, dict[str, str], list[str]]:
    """Cluster a CSV file's rows; returns the result, the mapping used and the row ids in order.

    ``workers``: processes normalising the values (default: the cores available, at most 4).
    """
    started = time.perf_counter()  # the seconds reported include reading the file
    headers = read_headers(path)
    mapping = resolve_mapping(entity, headers, id_column=id_column, explicit=columns)
    wanted = list(dict.fromkeys([id_column, *mapping.values()]))
    _, table = read_columns(path, wanted)
    ids = table[id_column]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for record_id in ids:
            if record_id in seen:
                raise ValidationError(
                    f"id column {id_column!r} is not unique: {record_id!r} repeats"
                )
            seen.add(record_id)
    features = prepare_columns(
        entity,
        ids,
        {field: table[column] for field, column in mapping.items()},
        workers=default_workers() if workers is None else workers,
    )
    del table  # the raw text is not needed any more: only the features are compared
    result = cluster_features(entity, ids, features, settings, progress=progress)
    result.seconds = time.perf_counter() - started
    return result, mapping, ids


def write_clusters(path: Path, ids: Sequence[str], cluster_of: Mapping[str, str]) -> None:
    """``id,cluster_id`` for every input row, in input order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cluster_id"])
        for record_id in ids:
            writer.writerow([record_id, cluster_of[record_id]])
