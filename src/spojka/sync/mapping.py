"""Declarative, versioned YAML mapping between a system's records and canonical entities.

Example::

    mapping: crm                  # a name
    version: 3                    # every stored record remembers "crm@3"
    lookups:
      faze: {Nový: lead, Vyhráno: won}
    streams:
      firmy:                      # the connector's stream
        entity: Firma             # canonical entity or any cs/sk/en word for it
        direction: both           # in (default) | out | both
        fields:                   # canonical field: source column or a spec
          name: nazev
          ico: {from: ic, transforms: [{format: "{:0>8}"}]}
          amount: {from: castka, transforms: [parse_money]}
          currency: {from: castka, transforms: [{parse_money: {part: currency}}]}
          expected_close: {from: datum, transforms: [{parse_date: "%d.%m.%Y"}]}
          name_full: {from: [jmeno, prijmeni], transforms: [{concat: " "}]}
          stage: {from: faze, transforms: [{lookup: faze}]}
          kind: {default: customer}
        outbound:                 # canonical → this system (default: inverse of `fields`)
          required: [nazev]
          fields: {nazev: name, ic: ico}

Transforms: lookup, format, parse_date, parse_datetime, parse_number, parse_money, concat,
default, unit, currency, strip, upper, lower. Everything here is pure: no database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from spojka.core.errors import ValidationError
from spojka.model.entities import ENTITIES, CanonicalEntity
from spojka.model.vocabulary import lookup_entity

Getter = Callable[[Mapping[str, Any]], Any]
Transform = Callable[[Any], Any]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class MappingError(ValidationError):
    """A mapping file is wrong; ``problems`` name file, line and field for each error."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems), detail={"count": len(problems)})
        self.problems = problems


class RecordError(ValidationError):
    """One record could not be mapped or validated (goes to the dead-letter queue)."""


def check_contract(contract: type[CanonicalEntity], data: Mapping[str, Any]) -> CanonicalEntity:
    """Validate data against an entity's contract; RecordError names the failing field."""
    try:
        return contract.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "(record)"
        raise RecordError(
            f"{contract.entity}.{name}: {err['msg']}", detail={"field": name}
        ) from None


# -- YAML with line numbers ---------------------------------------------------------------


def _load_with_lines(text: str, file: str) -> tuple[Any, dict[str, int]]:
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise MappingError([Problem(file, line, "(yaml)", str(exc).splitlines()[0])]) from None

    def convert(node: Any, path: str) -> Any:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                out[key] = convert(value_node, child)
                lines[child] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [convert(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return yaml.SafeLoader(text).construct_object(node, deep=True)

    if root is None:
        raise MappingError([Problem(file, 1, "(file)", "empty mapping file")])
    return convert(root, ""), lines


# -- transforms ------------------------------------------------------------------------------

_MONEY = re.compile(
    r"^\s*(?P<cur1>[A-Za-z€$£]{1,3}|Kč)?\s*(?P<num>[-+]?[\d\s.,']+)\s*(?P<cur2>[A-Za-z€$£]{1,3}|Kč|,-)?\s*$"
)
_CURRENCY_WORDS = {
    "kč": "CZK",
    "czk": "CZK",
    "€": "EUR",
    "eur": "EUR",
    "$": "USD",
    "usd": "USD",
    "£": "GBP",
    "gbp": "GBP",
    ",-": "CZK",
}
_UNITS: dict[str, tuple[str, Decimal]] = {
    "g": ("mass", Decimal("0.001")),
    "kg": ("mass", Decimal(1)),
    "t": ("mass", Decimal(1000)),
    "mm": ("length", Decimal("0.001")),
    "cm": ("length", Decimal("0.01")),
    "m": ("length", Decimal(1)),
    "km": ("length", Decimal(1000)),
    "min": ("time", Decimal(1) / 60),
    "h": ("time", Decimal(1)),
    "md": ("time", Decimal(8)),
    "ks": ("count", Decimal(1)),
    "pcs": ("count", Decimal(1)),
}


def parse_number(value: Any, *, decimal: str | None = None, thousands: str | None = None) -> Any:
    """'1 234,50' → Decimal('1234.50'); Czech/Slovak and English styles are recognised."""
    if value is None or isinstance(value, (int, float, Decimal)):
        return None if value is None else Decimal(str(value))
    text = str(value).strip().replace("\u00a0", " ").replace("'", "")
    if text == "":
        return None
    if decimal is None:
        # "1.234,5" / "1 234,5" → comma decimal; "1,234.5" → dot decimal
        last_comma, last_dot = text.rfind(","), text.rfind(".")
        decimal = "," if last_comma > last_dot else "."
    if thousands is None:
        thousands = "." if decimal == "," else ","
    text = text.replace(" ", "").replace(thousands, "")
    if decimal != ".":
        text = text.replace(decimal, ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None


def parse_money(value: Any, *, part: str = "amount", default_currency: str = "CZK") -> Any:
    """'12 500,- Kč' → Decimal('12500') (part=amount) or 'CZK' (part=currency)."""
    if value is None:
        return None
    text = re.sub(r",[-–]", "", str(value)).strip()  # "12 500,- Kč": whole crowns
    match = _MONEY.match(text)
    if not match:
        raise ValueError(f"{value!r} is not an amount of money")
    word = (match.group("cur1") or match.group("cur2") or "").lower()
    if part == "currency":
        if word in ("", ",-"):
            return default_currency
        return _CURRENCY_WORDS.get(word, word.upper())
    return parse_number(match.group("num").strip().rstrip(",-").strip())


def _parse_date(value: Any, formats: list[str], *, as_datetime: bool) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.isoformat() if as_datetime else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    for fmt in formats:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.isoformat() if as_datetime else parsed.date().isoformat()
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.isoformat() if as_datetime else parsed.date().isoformat()
    except ValueError:
        raise ValueError(f"{value!r} does not match {' or '.join(formats) or 'ISO 8601'}") from None


def _convert_unit(value: Any, source: str, target: str) -> Any:
    if value is None:
        return None
    a, b = _UNITS[source.lower()], _UNITS[target.lower()]
    return parse_number(value) * a[1] / b[1]


TRANSFORMS = (
    "lookup",
    "format",
    "parse_date",
    "parse_datetime",
    "parse_number",
    "parse_money",
    "concat",
    "default",
    "unit",
    "currency",
    "strip",
    "upper",
    "lower",
)


def _build_transform(spec: Any, lookups: Mapping[str, Mapping[str, Any]], where: str) -> Transform:
    """Compile one transform spec (``name`` or ``{name: args}``) into a function."""
    if isinstance(spec, str):
        name, args = spec, None
    elif isinstance(spec, dict) and len(spec) == 1:
        name, args = next(iter(spec.items()))
    else:
        raise ValueError(f"{where}: a transform is a name or a one-key mapping, got {spec!r}")
    if name == "lookup":
        options = args if isinstance(args, dict) and "table" in args else {"table": args}
        table = options["table"]
        if isinstance(table, str):
            if table not in lookups:
                raise ValueError(f"{where}: lookup table {table!r} is not defined in `lookups`")
            table = lookups[table]
        if not isinstance(table, dict):
            raise ValueError(f"{where}: lookup needs a table name or an inline mapping")
        folded = {str(k).casefold(): v for k, v in table.items()}
        has_default = "default" in options
        fallback = options.get("default")

        def lookup(value: Any) -> Any:
            if value is None:
                return None
            key = str(value).casefold()
            if key in folded:
                return folded[key]
            if has_default:
                return fallback
            raise ValueError(f"{value!r} is not in the lookup table")

        return lookup
    if name == "format":
        if not isinstance(args, str):
            raise ValueError(f"{where}: format needs a format string like '{{:0>8}}'")
        pattern = args
        return lambda v: None if v is None else pattern.format(v)
    if name in ("parse_date", "parse_datetime"):
        formats = [args] if isinstance(args, str) else list(args or [])
        as_dt = name == "parse_datetime"
        return lambda v: _parse_date(v, formats, as_datetime=as_dt)
    if name == "parse_number":
        opts = args or {}
        dec, thou = opts.get("decimal"), opts.get("thousands")
        return lambda v: parse_number(v, decimal=dec, thousands=thou)
    if name == "parse_money":
        opts = args or {}
        part = opts.get("part", "amount")
        if part not in ("amount", "currency"):
            raise ValueError(f"{where}: parse_money part must be amount or currency")
        default_currency = opts.get("default_currency", "CZK")
        return lambda v: parse_money(v, part=part, default_currency=default_currency)
    if name == "concat":
        sep = " " if args is None else str(args)
        return lambda v: (
            sep.join(str(x) for x in v if x not in (None, "")) or None if isinstance(v, list) else v
        )
    if name == "default":
        fallback_value = args
        return lambda v: fallback_value if v in (None, "") else v
    if name == "unit":
        if not isinstance(args, dict) or {"from", "to"} - set(args):
            raise ValueError(f"{where}: unit needs `from` and `to`")
        src, dst = str(args["from"]), str(args["to"])
        for unit in (src, dst):
            if unit.lower() not in _UNITS:
                raise ValueError(f"{where}: unknown unit {unit!r}")
        if _UNITS[src.lower()][0] != _UNITS[dst.lower()][0]:
            raise ValueError(f"{where}: cannot convert {src} to {dst}")
        return lambda v: _convert_unit(v, src, dst)
    if name == "currency":
        if not isinstance(args, dict) or "rate" not in args:
            raise ValueError(f"{where}: currency needs `rate` (and `from`/`to` for the record)")
        rate = Decimal(str(args["rate"]))
        return lambda v: None if v is None else (parse_number(v) * rate).quantize(Decimal("0.01"))
    if name == "strip":
        return lambda v: v.strip() if isinstance(v, str) else v
    if name == "upper":
        return lambda v: v.upper() if isinstance(v, str) else v
    if name == "lower":
        return lambda v: v.lower() if isinstance(v, str) else v
    raise ValueError(f"{where}: unknown transform {name!r} (known: {', '.join(TRANSFORMS)})")


def _build_field(
    spec: Any, lookups: Mapping[str, Mapping[str, Any]], where: str
) -> tuple[Getter, list[str]]:
    """Compile one field spec into a getter over a source record; return its source columns."""
    if isinstance(spec, str):
        column = spec
        return (lambda r: r.get(column)), [column]
    if spec is None or not isinstance(spec, dict):
        raise ValueError(f"{where}: a field is a column name or a mapping with `from`")
    unknown = set(spec) - {"from", "transforms", "default", "const"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    source = spec.get("from")
    transforms = [
        _build_transform(t, lookups, f"{where}.transforms[{i}]")
        for i, t in enumerate(spec.get("transforms") or [])
    ]
    has_default = "default" in spec
    default = spec.get("default")
    if "const" in spec:
        const = spec["const"]
        return (lambda r: const), []
    columns: list[str]
    if source is None:
        if not has_default:
            raise ValueError(f"{where}: needs `from` (a column) or `default`")
        columns = []

        def read(r: Mapping[str, Any]) -> Any:
            return None

    elif isinstance(source, list):
        columns = [str(c) for c in source]

        def read(r: Mapping[str, Any]) -> Any:
            return [r.get(c) for c in columns]

    else:
        column = str(source)
        columns = [column]

        def read(r: Mapping[str, Any]) -> Any:
            return r.get(column)

    if not transforms and not has_default:
        return read, columns

    def getter(r: Mapping[str, Any]) -> Any:
        value = read(r)
        for transform in transforms:
            value = transform(value)
        if value in (None, "") and has_default:
            return default
        return value

    return getter, columns


@dataclass
class StreamMapping:
    stream: str
    entity: str
    direction: str
    contract: type[CanonicalEntity]
    inbound: dict[str, Getter]
    outbound: dict[str, Getter]
    outbound_required: list[str]
    source_columns: dict[str, list[str]] = field(default_factory=dict)

    def _mapped(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical fields one source record gives (empty values left out)."""
        mapped: dict[str, Any] = {}
        for name, getter in self.inbound.items():
            try:
                value = getter(raw)
            except (ValueError, TypeError, InvalidOperation, KeyError) as exc:
                raise RecordError(f"{self.stream}.{name}: {exc}", detail={"field": name}) from None
            if value is not None and value != "":
                mapped[name] = value
        return mapped

    def validate(self, raw: Mapping[str, Any]) -> CanonicalEntity:
        """Map and validate one source record; RecordError names the failing field."""
        return check_contract(self.contract, self._mapped(raw))

    def canonical_text(self, raw: Mapping[str, Any]) -> str:
        """Map and validate one source record straight to its stored JSON text."""
        mapped = self._mapped(raw)
        contract = self.contract
        try:
            checked = contract.__pydantic_validator__.validate_python(mapped)
        except PydanticValidationError:
            check_contract(contract, mapped)  # raises RecordError naming the field
            raise
        text: str = contract.__pydantic_serializer__.to_json(checked, exclude_none=True).decode()
        return text

    def cleared(self, raw: Mapping[str, Any]) -> list[str]:
        """Canonical fields the record explicitly empties: a source column is present but
        the mapped value is empty. A field whose columns are all absent from the payload is
        not cleared (partial payloads leave it as it is)."""
        names = []
        for name, getter in self.inbound.items():
            columns = self.source_columns.get(name)
            if not columns or not any(c in raw for c in columns):
                continue
            try:
                value = getter(raw)
            except (ValueError, TypeError, InvalidOperation, KeyError):
                continue
            if value is None or value == "":
                names.append(name)
        return names

    def to_canonical(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Map and validate one source record into canonical data (JSON types)."""
        data: dict[str, Any] = json.loads(self.validate(raw).canonical_json())
        return data

    def to_target(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Map a canonical record to this system's fields and run its pre-flight checks."""
        out: dict[str, Any] = {}
        for name, getter in self.outbound.items():
            try:
                value = getter(data)
            except (ValueError, TypeError, InvalidOperation, KeyError) as exc:
                raise RecordError(f"{self.stream}.{name}: {exc}", detail={"field": name}) from None
            if value is not None:
                out[name] = value
        missing = [n for n in self.outbound_required if out.get(n) in (None, "")]
        if missing:
            raise RecordError(
                f"{self.stream}: pre-flight check failed, required field(s) "
                f"{', '.join(missing)} empty",
                detail={"field": missing[0]},
            )
        return out


@dataclass
class SyncMapping:
    name: str
    version: int
    streams: dict[str, StreamMapping]
    file: str = "<mapping>"

    @property
    def label(self) -> str:
        """What each stored record remembers: ``name@version``."""
        return f"{self.name}@{self.version}"

    def for_stream(self, stream: str) -> StreamMapping | None:
        return self.streams.get(stream)

    def targets_for(self, entity: str) -> list[StreamMapping]:
        return [
            s
            for s in self.streams.values()
            if s.entity == entity and s.direction in ("out", "both")
        ]


def _column_getter(canonical: str, table: Mapping[Any, Any] | None = None) -> Getter:
    if table is None:
        return lambda d: d.get(canonical)
    return lambda d: table.get(d.get(canonical), d.get(canonical))


def _inverse_outbound(
    fields: Mapping[str, Any], lookups: Mapping[str, Mapping[str, Any]]
) -> dict[str, Getter]:
    """canonical → target for plain column fields (lookups inverted); computed ones are skipped."""
    out: dict[str, Getter] = {}
    for canonical, spec in fields.items():
        if isinstance(spec, str):
            out[spec] = _column_getter(canonical)
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("from"), str):
            continue
        transforms = spec.get("transforms") or []
        if not transforms:
            out[spec["from"]] = _column_getter(canonical)
            continue
        if len(transforms) == 1 and isinstance(transforms[0], dict) and "lookup" in transforms[0]:
            table = transforms[0]["lookup"]
            if isinstance(table, dict) and "table" in table:
                table = table["table"]
            if isinstance(table, str):
                table = lookups.get(table, {})
            out[spec["from"]] = _column_getter(canonical, {v: k for k, v in table.items()})
    return out


def parse_mapping(text: str, *, file: str = "<mapping>") -> SyncMapping:
    """Parse and check a mapping; every problem (not just the first) is reported."""
    doc, lines = _load_with_lines(text, file)
    problems: list[Problem] = []

    def problem(path: str, message: str, name: str | None = None) -> None:
        problems.append(
            Problem(
                file, lines.get(path) or lines.get(path.rsplit(".", 1)[0]), name or path, message
            )
        )

    if not isinstance(doc, dict):
        raise MappingError([Problem(file, 1, "(file)", "a mapping file is a YAML mapping")])
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        problem("version", "`version` must be a positive integer (bump it on every change)")
        version = 0
    name = str(doc.get("mapping") or doc.get("connection") or Path(file).stem)
    lookups = doc.get("lookups") or {}
    if not isinstance(lookups, dict):
        problem("lookups", "`lookups` must map table names to {source: target} tables")
        lookups = {}
    streams_doc = doc.get("streams")
    if not isinstance(streams_doc, dict) or not streams_doc:
        problem("streams", "`streams` must declare at least one stream")
        streams_doc = {}
    streams: dict[str, StreamMapping] = {}
    for stream_name, spec in streams_doc.items():
        base = f"streams.{stream_name}"
        if not isinstance(spec, dict):
            problem(base, "a stream is a mapping with `entity` and `fields`")
            continue
        word = str(spec.get("entity", ""))
        entity = word if word in ENTITIES else lookup_entity(word) if word else None
        if entity is None:
            problem(
                f"{base}.entity",
                f"unknown entity {word!r}; use one of "
                f"{', '.join(sorted(ENTITIES))} or a cs/sk/en word for it",
            )
            continue
        contract = ENTITIES[entity]
        direction = spec.get("direction", "in")
        if direction not in ("in", "out", "both"):
            problem(f"{base}.direction", "direction must be in, out or both")
        fields = spec.get("fields") or {}
        if not isinstance(fields, dict):
            problem(f"{base}.fields", "`fields` maps canonical fields to source columns")
            fields = {}
        inbound: dict[str, Getter] = {}
        columns: dict[str, list[str]] = {}
        known = contract.model_fields
        for canonical, field_spec in fields.items():
            path = f"{base}.fields.{canonical}"
            if canonical not in known:
                problem(
                    path,
                    f"{entity} has no field {canonical!r} (fields: {', '.join(known)})",
                    f"{entity}.{canonical}",
                )
                continue
            try:
                inbound[canonical], columns[canonical] = _build_field(field_spec, lookups, path)
            except ValueError as exc:
                problem(path, str(exc).split(": ", 1)[-1], f"{entity}.{canonical}")
        if direction in ("in", "both"):
            for required, info in known.items():
                if info.is_required() and required not in fields:
                    problem(
                        f"{base}.fields",
                        f"mandatory field {required!r} of {entity} is not mapped",
                        f"{entity}.{required}",
                    )
        outbound_doc = spec.get("outbound") or {}
        outbound: dict[str, Getter] = {}
        required_out: list[str] = []
        if outbound_doc:
            if not isinstance(outbound_doc, dict):
                problem(f"{base}.outbound", "`outbound` has `fields` and `required`")
            else:
                for target, field_spec in (outbound_doc.get("fields") or {}).items():
                    path = f"{base}.outbound.fields.{target}"
                    if isinstance(field_spec, str) and field_spec not in known:
                        problem(path, f"{entity} has no field {field_spec!r}", target)
                        continue
                    try:
                        outbound[target], _ = _build_field(field_spec, lookups, path)
                    except ValueError as exc:
                        problem(path, str(exc).split(": ", 1)[-1], target)
                required_out = [str(r) for r in outbound_doc.get("required") or []]
        elif direction in ("out", "both"):
            outbound = _inverse_outbound(fields, lookups)
        streams[str(stream_name)] = StreamMapping(
            stream=str(stream_name),
            entity=entity,
            direction=direction,
            contract=contract,
            inbound=inbound,
            outbound=outbound,
            outbound_required=required_out,
            source_columns=columns,
        )
    if problems:
        raise MappingError(problems)
    return SyncMapping(name=name, version=int(version), streams=streams, file=file)


def load_mapping(path: str | Path) -> SyncMapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError([Problem(str(path), None, "(file)", f"cannot read: {exc}")]) from None
    return parse_mapping(text, file=str(path))
