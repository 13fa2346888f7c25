"""A folder of CSV, XLSX or JSON-lines files as a system: one file per stream.

Config::

    path: /data/import              # the folder
    streams:                        # optional; otherwise every file found is a stream
      firmy: {entity: Account, primary_key: ico, cursor_field: zmeneno, format: csv}
    delimiter: ";"                  # CSV only, default ","
    encoding: utf-8
    webhook_secret: "…"             # accept signed generic webhooks for this folder

A stream's entity comes from its config or from the file name through the cs/sk/en
vocabulary (``faktury.csv`` → Invoice). Writes append one row per call, carrying the
idempotency key in a ``_idempotency_key`` column, so a repeated key is answered from the
file instead of writing twice (safe across crashes: key and data land in one line).
Deletes (CSV and JSON lines) rewrite the file without the record's rows and replace it
atomically; deleting a record that is not there is a success, so a repeat is harmless.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from spojka.connectors.base import (
    Connector,
    Health,
    Page,
    Record,
    Stream,
    WebhookEvent,
    WriteResult,
    parse_generic_events,
    verify_hmac_signature,
)
from spojka.core.errors import ConfigError, PermanentError, TransientError, ValidationError
from spojka.model.vocabulary import lookup_entity

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl"}
KEY_COLUMN = "_idempotency_key"
#: formats whose records the connector can delete (a rewrite of the file without them)
DELETABLE = frozenset({"csv", "jsonl"})
SIGNATURE_HEADER = "x-spojka-signature"


def _entity_from_name(name: str) -> str | None:
    for candidate in (name, name.rstrip("s"), name.removesuffix("ies") + "y", name[:-1]):
        entity = lookup_entity(candidate.replace("_", " "))
        if entity:
            return entity
    # Czech/Slovak plurals: firmy → firma, faktury → faktura, zakázky → zakázka
    if name.endswith(("y", "e")):
        return lookup_entity(name[:-1] + "a")
    return None


def _cursor_key(value: Any, cursor_type: str) -> Any:
    if value is None or value == "":
        return None
    if cursor_type == "int":
        return int(value)
    if cursor_type == "datetime":
        text = str(value).replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed
    return str(value)


class FileConnector(Connector):
    kind = "file"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        if "path" not in self.config:
            raise ConfigError("file connector needs `path` (the folder)")
        self.folder = Path(self.config["path"])
        self.encoding = self.config.get("encoding", "utf-8")
        self.delimiter = self.config.get("delimiter", ",")
        self._declared: dict[str, dict[str, Any]] = dict(self.config.get("streams") or {})
        # Continuation of the last page per stream, so paging a big file stays linear.
        self._open: dict[str, tuple[str, Iterator[Record], Any]] = {}
        self._written_keys: dict[str, dict[str, str]] = {}

    # -- declaration -----------------------------------------------------------------
    def _file_for(self, name: str) -> tuple[Path, str]:
        spec = self._declared.get(name, {})
        if "file" in spec:
            path = self.folder / spec["file"]
            return path, spec.get("format") or FORMATS.get(path.suffix.lower(), "csv")
        fmt = spec.get("format")
        if fmt:
            suffix = {"csv": ".csv", "xlsx": ".xlsx", "jsonl": ".jsonl"}[fmt]
            return self.folder / f"{name}{suffix}", fmt
        for suffix, found in FORMATS.items():
            candidate = self.folder / f"{name}{suffix}"
            if candidate.exists():
                return candidate, found
        return self.folder / f"{name}.jsonl", "jsonl"

    def streams(self) -> Sequence[Stream]:
        names = dict.fromkeys(self._declared)
        if self.folder.is_dir():
            for path in sorted(self.folder.iterdir()):
                if path.suffix.lower() in FORMATS and not path.name.startswith("."):
                    names.setdefault(path.stem, None)
        result = []
        for name in names:
            spec = self._declared.get(name, {})
            entity = spec.get("entity") or _entity_from_name(name)
            if not entity:
                raise ConfigError(
                    f"file connector: cannot tell the entity of {name!r}; "
                    f"declare streams.{name}.entity"
                )
            result.append(
                Stream(
                    name=name,
                    entity=entity,
                    primary_key=spec.get("primary_key", "id"),
                    cursor_field=spec.get("cursor_field"),
                    cursor_type=spec.get("cursor_type", "datetime"),
                    version_field=spec.get("version_field"),
                    page_size=int(spec.get("page_size", 1000)),
                    supports_deletes=self._file_for(name)[1] in DELETABLE,
                )
            )
        return result

    def stream(self, name: str) -> Stream:
        for stream in self.streams():
            if stream.name == name:
                return stream
        # Writing to a stream whose file does not exist yet is allowed (export).
        spec = self._declared.get(name, {})
        entity = spec.get("entity") or _entity_from_name(name)
        if not entity:
            return super().stream(name)
        return Stream(
            name=name,
            entity=entity,
            primary_key=spec.get("primary_key", "id"),
            supports_deletes=self._file_for(name)[1] in DELETABLE,
        )

    # -- reading ---------------------------------------------------------------------
    def _rows(self, path: Path, fmt: str) -> tuple[Iterator[Record], Any]:
        if not path.exists():
            raise PermanentError(f"file connector: {path} does not exist")
        if fmt == "xlsx":
            from openpyxl import load_workbook

            book = load_workbook(path, read_only=True, data_only=True)
            return self._xlsx_rows(book), book
        handle = path.open(encoding=self.encoding, newline="")
        if fmt == "csv":
            return self._csv_rows(handle), handle
        return self._jsonl_rows(handle, path), handle

    def _csv_rows(self, handle: TextIO) -> Iterator[Record]:
        reader = csv.reader(handle, delimiter=self.delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        width = len(header)
        for row in reader:
            if not row:
                continue
            if len(row) < width:
                row = row + [""] * (width - len(row))
            yield {k: (v if v != "" else None) for k, v in zip(header, row, strict=False)}

    def _jsonl_rows(self, handle: TextIO, path: Path) -> Iterator[Record]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                # A broken line is yielded as such; the engine dead-letters it, the rest flows.
                yield {"_error": f"{path.name}:{number}: not valid JSON", "_line": line[:500]}
                continue
            yield record

    def _xlsx_rows(self, book: Any) -> Iterator[Record]:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            return
        names = [str(h).strip() if h is not None else f"col{i}" for i, h in enumerate(header)]
        for row in rows:
            if row is None or all(v is None for v in row):
                continue
            record: Record = {}
            for key, value in zip(names, row, strict=False):
                if isinstance(value, datetime) or hasattr(value, "isoformat"):
                    value = value.isoformat()
                record[key] = value
            yield record

    def _close_open(self, name: str) -> None:
        entry = self._open.pop(name, None)
        if entry is not None:
            entry[2].close()

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        path, fmt = self._file_for(stream.name)
        offset = int(page_token or 0)
        entry = self._open.get(stream.name)
        if entry is not None and entry[0] == (page_token or "0"):
            rows = entry[1]
        else:
            self._close_open(stream.name)
            rows, handle = self._rows(path, fmt)
            for _ in range(offset):
                if next(rows, None) is None:
                    break
            entry = ("", rows, handle)
        threshold = _cursor_key(since, stream.cursor_type) if stream.cursor_field else None
        records: list[Record] = []
        consumed = 0
        exhausted = False
        while consumed < stream.page_size:
            row = next(rows, None)
            if row is None:
                exhausted = True
                break
            consumed += 1
            row.pop(KEY_COLUMN, None)
            if threshold is not None and stream.cursor_field:
                try:
                    key = _cursor_key(row.get(stream.cursor_field), stream.cursor_type)
                except ValueError:
                    key = None  # unparseable cursor: pass it on, the engine dead-letters it
                if key is not None and key < threshold:
                    continue
            records.append(row)
        if exhausted:
            self._close_open(stream.name)
            if entry[0] == "":
                entry[2].close()
            return Page(records=records, next_token=None)
        next_token = str(offset + consumed)
        self._open[stream.name] = (next_token, rows, entry[2])
        return Page(records=records, next_token=next_token)

    # -- writing ---------------------------------------------------------------------
    def _known_keys(self, name: str, path: Path, fmt: str, pk: str) -> dict[str, str]:
        keys = self._written_keys.get(name)
        if keys is None:
            keys = {}
            if path.exists():
                rows, handle = self._rows(path, fmt)
                try:
                    for row in rows:
                        key = row.get(KEY_COLUMN)
                        if key:
                            keys[str(key)] = str(row.get(pk))
                finally:
                    handle.close()
            self._written_keys[name] = keys
        return keys

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        path, fmt = self._file_for(stream.name)
        pk = stream.primary_key
        keys = self._known_keys(stream.name, path, fmt, pk)
        if idempotency_key in keys:
            return WriteResult(external_id=keys[idempotency_key], created=False)
        created = external_id is None
        if external_id is None:
            given = record.get(pk)
            external_id = (
                str(given)
                if given not in (None, "")
                else "f" + hashlib.sha1(idempotency_key.encode()).hexdigest()[:15]
            )
        row = {pk: external_id, **{k: v for k, v in record.items() if k != pk}}
        row[KEY_COLUMN] = idempotency_key
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if fmt == "jsonl":
                with path.open("a", encoding=self.encoding) as fh:
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            elif fmt == "csv":
                self._append_csv(path, row)
            else:
                self._append_xlsx(path, row)
        except OSError as exc:
            raise TransientError(f"file connector: cannot write {path}: {exc}") from exc
        keys[idempotency_key] = external_id
        return WriteResult(external_id=external_id, created=created)

    def delete(self, stream: Stream, external_id: str, *, idempotency_key: str) -> WriteResult:
        """Rewrite the file without the record's rows (atomically); gone already is fine."""
        path, fmt = self._file_for(stream.name)
        if fmt not in DELETABLE:
            return super().delete(stream, external_id, idempotency_key=idempotency_key)
        if not path.exists():
            return WriteResult(external_id=external_id, already_gone=True)
        pk = stream.primary_key
        tmp = path.with_name(f".{path.name}.deleting")
        removed = 0
        try:
            with (
                path.open(encoding=self.encoding, newline="") as src,
                tmp.open("w", encoding=self.encoding, newline="") as dst,
            ):
                if fmt == "jsonl":
                    for line in src:
                        try:
                            gone = str(json.loads(line).get(pk)) == external_id
                        except (ValueError, AttributeError):
                            gone = False
                        if gone:
                            removed += 1
                        else:
                            dst.write(line)
                else:
                    reader = csv.reader(src, delimiter=self.delimiter)
                    writer = csv.writer(dst, delimiter=self.delimiter)
                    header = next(reader, None)
                    if header is not None:
                        writer.writerow(header)
                        names = [h.strip().lstrip("\ufeff") for h in header]
                        at = names.index(pk) if pk in names else None
                        for row in reader:
                            if at is not None and at < len(row) and row[at] == external_id:
                                removed += 1
                            else:
                                writer.writerow(row)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TransientError(f"file connector: cannot rewrite {path}: {exc}") from exc
        self._close_open(stream.name)
        return WriteResult(external_id=external_id, created=False, already_gone=removed == 0)

    def _append_csv(self, path: Path, row: Record) -> None:
        header: list[str]
        if path.exists() and path.stat().st_size > 0:
            with path.open(encoding=self.encoding, newline="") as fh:
                header = next(csv.reader(fh, delimiter=self.delimiter))
            unknown = [k for k in row if k not in header]
            if unknown:
                raise ValidationError(
                    f"file connector: {path.name} has no column(s) {', '.join(unknown)}"
                )
            new = False
        else:
            header = list(row)
            new = True
        with path.open("a", encoding=self.encoding, newline="") as fh:
            writer = csv.writer(fh, delimiter=self.delimiter)
            if new:
                writer.writerow(header)
            writer.writerow(["" if row.get(h) is None else row.get(h) for h in header])
            fh.flush()
            os.fsync(fh.fileno())

    def _append_xlsx(self, path: Path, row: Record) -> None:
        from openpyxl import Workbook, load_workbook

        if path.exists():
            book = load_workbook(path)
            sheet = book.worksheets[0]
            header = [c.value for c in sheet[1]]
            for key in row:
                if key not in header:
                    header.append(key)
                    sheet.cell(row=1, column=len(header), value=key)
        else:
            book = Workbook()
            sheet = book.active
            header = list(row)
            sheet.append(header)
        sheet.append([row.get(str(h)) for h in header])
        tmp = path.with_suffix(".tmp.xlsx")
        book.save(tmp)
        os.replace(tmp, path)

    # -- webhooks & health -------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        secret = self.config.get("webhook_secret")
        if not secret:
            return super().verify_webhook(headers, body)
        lower = {k.lower(): v for k, v in headers.items()}
        verify_hmac_signature(
            str(secret),
            lower.get(SIGNATURE_HEADER),
            body,
            tolerance_s=float(self.config.get("webhook_tolerance_s", 300)),
        )
        return parse_generic_events(body)

    def health(self) -> Health:
        if not self.folder.is_dir():
            return Health(ok=False, detail=f"folder {self.folder} does not exist")
        if not os.access(self.folder, os.R_OK):
            return Health(ok=False, detail=f"folder {self.folder} is not readable")
        return Health(ok=True, detail=f"{len(self.streams())} stream(s) in {self.folder}")

    def close(self) -> None:
        for name in list(self._open):
            self._close_open(name)
