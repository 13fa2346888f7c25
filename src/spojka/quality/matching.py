"""Entity resolution: prepare records, block, score pairs (Fellegi–Sunter weights), decide.

The score of a pair is a sum of per-field log2 Bayes factors (``weight``): how much more
likely the observed agreement level is among true duplicates than among random pairs.
The default weights below are set from the usual m/u reasoning for CZ/SK business data
(an IČO is almost unique, a city is not) so a new user gets sensible results without
training. Exact-identifier rules come first: the same valid IČO decides, unless the two
records look like different branches of one company.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Any, Literal, TypeVar

from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from spojka.core.errors import ValidationError
from spojka.quality import normalize as nz
from spojka.quality.fields import ENTITY_FIELDS
from spojka.quality.parallel import map_distinct

Decision = Literal["merge", "review", "separate"]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MatchSettings:
    """Thresholds on the total match weight (log2 odds units) and blocking limits."""

    merge_threshold: float = 9.0
    review_threshold: float = 4.0
    #: compared pairs scoring below this may never end up in one cluster (anti-chaining)
    cannot_link_below: float = -2.0
    #: name-like blocks larger than this are skipped: they would only compare strangers
    max_block: int = 30
    #: identifier blocks (IČO, e-mail, phone) may be larger: a company has branches
    max_identifier_block: int = 500

    def decide(self, score: float) -> Decision:
        if score >= self.merge_threshold:
            return "merge"
        if score >= self.review_threshold:
            return "review"
        return "separate"


DEFAULT_SETTINGS = MatchSettings()

# --------------------------------------------------------------------------- preparation


class Prepared:
    """A record reduced to the comparable features of its entity."""

    __slots__ = (
        "birth",
        "city",
        "company",
        "dic",
        "domain",
        "email",
        "email_local",
        "first",
        "house",
        "iban",
        "ico",
        "ico_raw",
        "is_branch",
        "last",
        "legal_form",
        "name",
        "national_id",
        "phone",
        "record_id",
        "region",
        "street",
        "street2",
        "zip",
    )

    def __init__(self, record_id: str) -> None:
        self.record_id = record_id
        self.name: str | None = None
        self.legal_form: str | None = None
        self.is_branch = False
        self.ico: str | None = None
        self.ico_raw: str | None = None
        self.dic: str | None = None
        self.email: str | None = None
        self.email_local: str | None = None
        self.domain: str | None = None
        self.phone: str | None = None
        self.iban: str | None = None
        self.street: str | None = None
        self.house: str | None = None
        self.street2: str | None = None
        self.city: str | None = None
        self.zip: str | None = None
        self.region: str | None = None
        self.first: str | None = None
        self.last: str | None = None
        self.birth: str | None = None
        self.national_id: str | None = None
        self.company: str | None = None


def _blank(value: object) -> bool:
    return not value or (isinstance(value, str) and value.isspace())


_NOT_KEY = re.compile(r"[^0-9a-z ]+")
_NON_DIGIT = re.compile(r"\D")
_SPACE = re.compile(r"\s")
_DISTRICT_NUMBER = re.compile(r"\s+\d+$")
_CITY_PART = re.compile(r"\s[-–]\s")


@lru_cache(maxsize=65536)
def _key_text(value: str) -> str | None:
    text = _NOT_KEY.sub(" ", nz.fold(value))
    text = " ".join(text.split())
    return text or None


@lru_cache(maxsize=65536)
def _street_parts(raw: str) -> tuple[str | None, str | None]:
    street, house, orientation = nz.split_street(raw)
    if orientation:
        house = f"{house}/{orientation}" if house else orientation
    return (_key_text(street) if street else None), house


@lru_cache(maxsize=65536)
def _person_key(raw: str) -> str | None:
    try:
        return _key_text(nz.normalize_person_name(raw))
    except nz.InvalidValue:
        return None


# Field preparers: one raw (non-blank) value → its features. ``prepare`` applies them to one
# record; ``prepare_columns`` applies them to whole columns, each distinct value once.


def _prep_company(raw: str) -> tuple[str | None, str | None, bool]:
    key, legal_form, is_branch = nz.company_name_key(raw)
    return _key_text(key), legal_form, is_branch


def _prep_ico(raw: str) -> tuple[str | None, str | None]:
    """(valid IČO, None) or (None, the digits of an invalid one)."""
    try:
        return nz.normalize_ico(raw), None
    except nz.InvalidValue:
        digits = _NON_DIGIT.sub("", raw)
        return None, (digits.zfill(8) if digits else None)


def _prep_dic(raw: str) -> str | None:
    try:
        return nz.normalize_vat(raw)
    except nz.InvalidValue:
        return None


def _prep_email(raw: str) -> tuple[str | None, str | None, str | None]:
    """(address, local part, host); an invalid address is kept lower-cased."""
    try:
        email: str | None = nz.normalize_email(raw)
    except nz.InvalidValue:
        email = raw.strip().lower() or None
    if email and "@" in email:
        local, _, host = email.partition("@")
        return email, local, host
    return email, None, None


def _prep_domain(raw: str) -> str | None:
    try:
        return nz.normalize_domain(raw)
    except nz.InvalidValue:
        return None


def _prep_iban(raw: str) -> str | None:
    try:
        return nz.normalize_iban(raw)
    except nz.InvalidValue:
        return None


def _prep_city(raw: str) -> str | None:
    city = _DISTRICT_NUMBER.sub("", raw.strip())  # "Praha 10" → district is in the PSČ
    return _key_text(_CITY_PART.split(city, maxsplit=1)[0])


def _prep_digits(raw: str) -> str | None:
    return _NON_DIGIT.sub("", raw) or None


def _prep_house(raw: str) -> str:
    return _SPACE.sub("", raw).lower()


def _prep_birth(raw: str) -> str | None:
    try:
        return nz.normalize_date(raw).strftime("%Y%m%d")
    except nz.InvalidValue:
        return _NON_DIGIT.sub("", raw) or None


def _prep_company_of_person(raw: str) -> str | None:
    try:
        return _key_text(nz.normalize_company_name(raw).key)
    except nz.InvalidValue:
        return None


def _apply_email(
    p: Prepared, entity: str, prepared: tuple[str | None, str | None, str | None]
) -> None:
    p.email, p.email_local, host = prepared
    if host is not None and entity == "account" and host not in nz.FREEMAIL_DOMAINS:
        p.domain = host


def _apply_person_names(p: Prepared, first: object, last: object, full: object) -> None:
    if _blank(first) and _blank(last) and not _blank(full):
        parts = nz.normalize_person_name(str(full)).split()
        first, last = (" ".join(parts[:-1]) or None), parts[-1]
    if not _blank(first):
        p.first = _person_key(str(first))
    if not _blank(last):
        p.last = _person_key(str(last))


def prepare(entity: str, record_id: str, values: Mapping[str, str | None]) -> Prepared:
    """Normalise one record's fields into matching features; invalid values are kept weakly."""
    if entity not in ENTITY_FIELDS:
        raise ValidationError(f"unknown entity {entity!r}")
    p = Prepared(record_id)
    get = values.get

    if not _blank(raw := get("name")) and entity == "account":
        p.name, p.legal_form, p.is_branch = _prep_company(str(raw))
    if not _blank(raw := get("ico")):
        p.ico, p.ico_raw = _prep_ico(str(raw))
    if not _blank(raw := get("dic")):
        p.dic = _prep_dic(str(raw))
    if not _blank(raw := get("email")):
        _apply_email(p, entity, _prep_email(str(raw)))
    if not _blank(raw := get("domain")) and (domain := _prep_domain(str(raw))) is not None:
        p.domain = domain
    if not _blank(raw := get("phone")):
        p.phone = nz.phone_match_key(str(raw))
    if not _blank(raw := get("iban")):
        p.iban = _prep_iban(str(raw))
    if not _blank(raw := get("street")):
        p.street, p.house = _street_parts(str(raw))
    if not _blank(raw := get("house_number")):
        p.house = _prep_house(str(raw))
    if not _blank(raw := get("street2")):
        p.street2 = _key_text(str(raw))
    if not _blank(raw := get("city")):
        p.city = _prep_city(str(raw))
    if not _blank(raw := get("zip")):
        p.zip = _prep_digits(str(raw))
    if not _blank(raw := get("region")):
        p.region = _key_text(str(raw))

    if entity == "contact":
        _apply_person_names(p, get("first_name"), get("last_name"), get("full_name"))
        if not _blank(raw := get("birth_date")):
            p.birth = _prep_birth(str(raw))
        if not _blank(raw := get("national_id")):
            p.national_id = _prep_digits(str(raw))
        if not _blank(raw := get("company")):
            p.company = _prep_company_of_person(str(raw))
    return p


#: the features of a prepared record (``Prepared`` without its id)
FEATURES: tuple[str, ...] = tuple(name for name in Prepared.__slots__ if name != "record_id")
#: a prepared table: feature → one value per record, in record order
Features = dict[str, list[Any]]


def _person_names(first: object, last: object, full: object) -> tuple[str | None, str | None]:
    p = Prepared("")
    _apply_person_names(p, first, last, full)
    return p.first, p.last


def prepare_columns(
    entity: str,
    ids: Sequence[str],
    columns: Mapping[str, Sequence[str | None]],
    *,
    workers: int = 1,
) -> Features:
    """``prepare`` for a whole table given column by column: the same features, faster.

    ``columns`` maps canonical fields to one value per id. Each distinct value of a column
    is normalised once (on ``workers`` processes); the result holds one list per feature
    (see ``prepared_rows``).
    """
    if entity not in ENTITY_FIELDS:
        raise ValidationError(f"unknown entity {entity!r}")
    size = len(ids)
    account = entity == "account"
    plan: list[tuple[str, Callable[[str], Any], Any]] = [
        ("ico", _prep_ico, (None, None)),
        ("dic", _prep_dic, None),
        ("email", _prep_email, (None, None, None)),
        ("domain", _prep_domain, None),
        ("phone", nz.phone_match_key, None),
        ("iban", _prep_iban, None),
        ("street", _street_parts, (None, None)),
        ("house_number", _prep_house, None),
        ("street2", _key_text, None),
        ("city", _prep_city, None),
        ("zip", _prep_digits, None),
        ("region", _key_text, None),
    ]
    if account:
        plan.append(("name", _prep_company, (None, None, False)))
    else:
        plan.append(("birth_date", _prep_birth, None))
        plan.append(("national_id", _prep_digits, None))
        plan.append(("company", _prep_company_of_person, None))
    distinct: list[list[str]] = []
    for name, _, _ in plan:
        values = columns.get(name)
        if values is not None and len(values) != size:
            raise ValueError(f"column {name!r} has {len(values)} values for {size} ids")
        distinct.append([raw for raw in dict.fromkeys(values or ()) if raw and not raw.isspace()])
    done = map_distinct(
        [(normalise, values) for (_, normalise, _), values in zip(plan, distinct, strict=True)],
        workers,
    )
    by_field: dict[str, list[Any]] = {}
    for (name, _, default), values, results in zip(plan, distinct, done, strict=True):
        lookup: dict[str | None, Any] = dict(zip(values, results, strict=True))
        raw_values = columns.get(name)
        by_field[name] = (
            [default] * size
            if raw_values is None
            else list(map(lookup.get, raw_values, repeat(default)))
        )

    def split(name: str, width: int) -> list[list[Any]]:
        parts = by_field[name]
        return [list(map(itemgetter(n), parts)) for n in range(width)]

    f: Features = {}
    if account:
        f["name"], f["legal_form"], f["is_branch"] = split("name", 3)
    else:
        f["name"], f["legal_form"], f["is_branch"] = [None] * size, [None] * size, [False] * size
    f["ico"], f["ico_raw"] = split("ico", 2)
    f["dic"] = by_field["dic"]
    f["email"], f["email_local"], hosts = split("email", 3)
    f["domain"] = [
        given
        if given is not None
        else (host if account and host is not None and host not in nz.FREEMAIL_DOMAINS else None)
        for given, host in zip(by_field["domain"], hosts, strict=True)
    ]
    f["phone"] = by_field["phone"]
    f["iban"] = by_field["iban"]
    f["street"], houses = split("street", 2)
    f["house"] = [
        given if given is not None else house
        for given, house in zip(by_field["house_number"], houses, strict=True)
    ]
    f["street2"] = by_field["street2"]
    f["city"] = by_field["city"]
    f["zip"] = by_field["zip"]
    f["region"] = by_field["region"]
    if account:
        for name in ("first", "last", "birth", "national_id", "company"):
            f[name] = [None] * size
    else:
        first, last, full = (columns.get(n) or [None] * size for n in _PERSON_NAME_FIELDS)
        by_field["names"] = list(map(_person_names, first, last, full))
        f["first"], f["last"] = split("names", 2)
        f["birth"] = by_field["birth_date"]
        f["national_id"] = by_field["national_id"]
        f["company"] = by_field["company"]
    return f


_PERSON_NAME_FIELDS = ("first_name", "last_name", "full_name")


def prepared_rows(ids: Sequence[str], features: Features) -> list[Prepared]:
    """The records of a prepared table, as ``prepare`` returns them one by one."""
    rows = [Prepared(record_id) for record_id in ids]
    for name in FEATURES:
        for p, value in zip(rows, features[name], strict=True):
            setattr(p, name, value)
    return rows


def features_of(rows: Sequence[Prepared]) -> Features:
    """The prepared table of records prepared one by one (``prepared_rows`` reversed)."""
    return {name: [getattr(p, name) for p in rows] for name in FEATURES}


# --------------------------------------------------------------------------- blocking


def blocking_keys(entity: str, p: Prepared) -> Iterator[tuple[str, bool]]:
    """Keys of the blocks a record falls into, each flagged True when it is an identifier."""
    if p.ico:
        yield "i:" + p.ico, True
    if p.dic:
        yield "d:" + p.dic, True
    if p.email:
        yield "e:" + p.email, True
    if p.phone:
        yield "p:" + p.phone, True
    if p.iban:
        yield "b:" + p.iban, True
    if p.national_id and len(p.national_id) >= 5:
        yield "n:" + p.national_id, True
    if entity == "account":
        if p.domain:
            yield "w:" + p.domain, True
        if p.name:
            # typos hit one end of a name, rarely both: one key per end, one per word set
            compact = p.name.replace(" ", "")
            yield "n6:" + compact[:6], False
            yield "nr:" + compact[-6:], False
            yield "ns:" + " ".join(sorted(p.name.split())), False
        return
    # persons
    first, last = p.first or "", p.last or ""
    if last:
        yield "lf:" + last + "|" + first[:1], False
        if p.zip:
            yield "lz:" + last[:3] + p.zip, False
    if first and last:
        yield "fl:" + first + "|" + last[:1], False
        yield "sw:" + "|".join(sorted((first, last))), False
    if p.birth:
        if first:
            yield "fb:" + first + p.birth, False
        if last:
            yield "lb:" + last + p.birth, False
        if p.zip:
            yield "bz:" + p.birth + p.zip, False
    if p.street and p.zip:
        yield "sz:" + p.street[:6] + p.zip, False


class BlockingIndex:
    """Blocking key → record positions, kept up to date record by record."""

    def __init__(self, entity: str, settings: MatchSettings = DEFAULT_SETTINGS) -> None:
        self.entity = entity
        self.settings = settings
        self.blocks: dict[str, list[int]] = {}
        self.identifier_keys: set[str] = set()
        #: blocking keys per record position (filled when positions are added in order)
        self.keys_of: list[tuple[str, ...]] = []

    def add(self, position: int, p: Prepared) -> None:
        keys = []
        for key, is_identifier in blocking_keys(self.entity, p):
            block = self.blocks.get(key)
            if block is None:
                # one shared string object per key: the per-record tuples below cost pointers
                self.blocks[key] = [position]
            else:
                block.append(position)
            keys.append(key)
            if is_identifier:
                self.identifier_keys.add(key)
        if position == len(self.keys_of):
            self.keys_of.append(tuple(keys))

    def iter_pairs(self) -> Iterator[tuple[int, int]]:
        """Every within-block pair (i < j) once, record by record, without a global pair set."""
        blocks, limit_of = self.blocks, self._limit
        for left, keys in enumerate(self.keys_of):
            candidates: set[int] = set()
            for key in keys:
                members = blocks[key]
                n = len(members)
                if 2 <= n <= limit_of(key):
                    candidates.update(members)
            for right in sorted(candidates):
                if right > left:
                    yield left, right

    def _limit(self, key: str) -> int:
        if key in self.identifier_keys:
            return self.settings.max_identifier_block
        return self.settings.max_block

    def candidates(self, p: Prepared) -> set[int]:
        """Positions of records sharing a (not oversized) block with ``p``."""
        found: set[int] = set()
        for key, is_identifier in blocking_keys(self.entity, p):
            members = self.blocks.get(key)
            if not members:
                continue
            limit = self.settings.max_identifier_block if is_identifier else self.settings.max_block
            if len(members) <= limit:
                found.update(members)
        return found

    def pairs(self) -> set[tuple[int, int]]:
        """Every within-block pair (i < j) of blocks no larger than their limit."""
        pairs: set[tuple[int, int]] = set()
        for key, members in self.blocks.items():
            n = len(members)
            if n < 2 or n > self._limit(key):
                continue
            for a in range(n):
                left = members[a]
                for b in range(a + 1, n):
                    right = members[b]
                    if left != right:
                        pairs.add((left, right) if left < right else (right, left))
        return pairs


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class FieldAgreement:
    """How one field compared: the agreement level and its weight in the total."""

    field: str
    level: str
    weight: float
    left: str | None
    right: str | None


@dataclass(slots=True)
class PairScore:
    score: float
    decision: Decision
    rule: str | None = None  # an exact-identifier rule that decided, if any
    fields: list[FieldAgreement] = field(default_factory=list)

    @property
    def probability(self) -> float:
        """Match probability assuming a prior of 1 : 1000 among candidate pairs."""
        return 1.0 / (1.0 + 2.0 ** (-(self.score - math.log2(1000))))

    @property
    def agreeing(self) -> list[str]:
        return [f.field for f in self.fields if f.weight > 0]

    @property
    def disagreeing(self) -> list[str]:
        return [f.field for f in self.fields if f.weight < 0]


def _sim(a: str, b: str) -> float:
    """String similarity in 0..1 robust to typos and to word order."""
    if a == b:
        return 1.0
    return max(JaroWinkler.normalized_similarity(a, b), fuzz.token_sort_ratio(a, b) / 100.0)


class _Scorer:
    """Accumulates field weights; records the explanation only when asked."""

    __slots__ = ("explain", "fields", "total")

    def __init__(self, explain: bool) -> None:
        self.total = 0.0
        self.explain = explain
        self.fields: list[FieldAgreement] = []

    def add(self, name: str, level: str, weight: float, left: object, right: object) -> None:
        self.total += weight
        if self.explain:
            self.fields.append(
                FieldAgreement(
                    name,
                    level,
                    weight,
                    None if left is None else str(left),
                    None if right is None else str(right),
                )
            )


def _text_levels(
    s: _Scorer,
    name: str,
    a: str | None,
    b: str | None,
    levels: tuple[tuple[float, float], ...],
    disagree: float,
) -> None:
    if not a or not b:
        return
    sim = _sim(a, b)
    for bound, weight in levels:
        if sim >= bound:
            s.add(name, "exact" if bound >= 1.0 else f"similar≥{bound:.2f}", weight, a, b)
            return
    s.add(name, "different", disagree, a, b)


def _exact(
    s: _Scorer, name: str, a: str | None, b: str | None, agree: float, disagree: float
) -> None:
    if a and b:
        if a == b:
            s.add(name, "exact", agree, a, b)
        else:
            s.add(name, "different", disagree, a, b)


def _near_digits(
    s: _Scorer, name: str, a: str | None, b: str | None, weights: tuple[float, float, float]
) -> None:
    """Exact / one typo (edit or transposition) / different, for digit strings."""
    if not a or not b:
        return
    if a == b:
        s.add(name, "exact", weights[0], a, b)
    elif DamerauLevenshtein.distance(a, b) <= 1:
        s.add(name, "one typo", weights[1], a, b)
    else:
        s.add(name, "different", weights[2], a, b)


def _address(s: _Scorer, a: Prepared, b: Prepared) -> None:
    _near_digits(s, "zip", a.zip, b.zip, (2.5, 0.5, -2.0))
    _text_levels(s, "city", a.city, b.city, ((1.0, 1.5), (0.9, 1.0)), -1.5)
    if a.street and b.street:
        sim = _sim(a.street, b.street)
        same_house = bool(a.house and b.house and a.house == b.house)
        if sim >= 0.9 and same_house:
            s.add("street", "same street and number", 4.5, _street(a), _street(b))
        elif sim >= 0.9:
            s.add(
                "street", "same street", 1.0 if a.house and b.house else 2.0, _street(a), _street(b)
            )
        elif sim >= 0.8:
            s.add("street", "similar street", 0.5, _street(a), _street(b))
        else:
            s.add("street", "different", -1.5, _street(a), _street(b))
    elif a.house and b.house:
        _exact(s, "house_number", a.house, b.house, 1.0, -1.0)


def _street(p: Prepared) -> str:
    return " ".join(x for x in (p.street, p.house) if x)


def _different_establishment(a: Prepared, b: Prepared) -> bool:
    """Branch words say these are two establishments (seat vs. pobočka, or two pobočky)."""
    if a.is_branch != b.is_branch:
        return True
    if a.is_branch and b.is_branch:
        return _sim(a.name or "", b.name or "") < 0.94 and (a.city != b.city or a.zip != b.zip)
    return False


def _moved_or_branch(a: Prepared, b: Prepared) -> bool:
    """One IČO at two clearly different places: a move or an unnamed branch; a person decides."""
    return bool(
        a.city and b.city and a.city != b.city and a.zip and b.zip and a.zip[:2] != b.zip[:2]
    )


def score_account(
    a: Prepared, b: Prepared, settings: MatchSettings = DEFAULT_SETTINGS, *, explain: bool = False
) -> PairScore:
    s = _Scorer(explain)
    rule: str | None = None
    if a.ico and b.ico:
        if a.ico == b.ico:
            if _different_establishment(a, b):
                # one company, two establishments (seat and provozovna): never one record
                s.add("ico", "same, but a different establishment", -20.0, a.ico, b.ico)
                rule = "same IČO, different establishment"
            elif _moved_or_branch(a, b):
                s.add("ico", "same, but a different address", 5.0, a.ico, b.ico)
                rule = "same IČO, different address"
            else:
                s.add("ico", "exact (valid IČO)", 20.0, a.ico, b.ico)
                rule = "same valid IČO"
        else:
            s.add("ico", "different valid IČO", -20.0, a.ico, b.ico)
            rule = "different valid IČO"
    elif (a.ico or a.ico_raw) and (b.ico or b.ico_raw):
        left, right = a.ico or a.ico_raw, b.ico or b.ico_raw
        _near_digits(s, "ico", left, right, (3.0, 3.0, -1.0))
    if rule is not None and not explain and rule != "same IČO, different address":
        # the identifier decided; the rest can only explain, never change the decision
        return PairScore(s.total, settings.decide(s.total), rule)

    if a.name and b.name:
        # no Jaro-Winkler here: its prefix bonus calls "Stavby Novák" ≈ "Stavby Nováček"
        sim = 1.0 if a.name == b.name else fuzz.token_sort_ratio(a.name, b.name) / 100.0
        if sim >= 1.0:
            s.add("name", "exact", 8.0, a.name, b.name)
        elif sim >= 0.94:
            s.add("name", "similar≥0.94", 6.0, a.name, b.name)
        elif sim >= 0.88:
            s.add("name", "similar≥0.88", 3.5, a.name, b.name)
        elif sim >= 0.75:
            s.add("name", "similar≥0.75", 0.0, a.name, b.name)
        else:
            s.add("name", "different", -6.0, a.name, b.name)
        if a.legal_form and b.legal_form and a.legal_form != b.legal_form:
            s.add("legal_form", "different", -2.0, a.legal_form, b.legal_form)
    company_level = rule is None or rule == "same valid IČO"
    if company_level:
        _exact(s, "dic", a.dic, b.dic, 10.0, -6.0)
    if a.email and b.email:
        if a.email == b.email:
            s.add("email", "exact", 7.0, a.email, b.email)
        else:
            s.add("email", "different", -0.5, a.email, b.email)
    if company_level:
        _exact(s, "domain", a.domain, b.domain, 5.0, -2.0)
    _exact(s, "phone", a.phone, b.phone, 6.0, -0.5)
    _exact(s, "iban", a.iban, b.iban, 8.0, -1.0)
    _address(s, a, b)
    return PairScore(s.total, settings.decide(s.total), rule, s.fields)


def _name_levels(s: _Scorer, name: str, a: str, b: str, weights: tuple[float, ...]) -> None:
    sim = 1.0 if a == b else JaroWinkler.normalized_similarity(a, b)
    if sim >= 1.0:
        s.add(name, "exact", weights[0], a, b)
    elif sim >= 0.92:
        s.add(name, "similar≥0.92", weights[1], a, b)
    elif sim >= 0.84:
        s.add(name, "similar≥0.84", weights[2], a, b)
    else:
        s.add(name, "different", weights[3], a, b)


def _birth(s: _Scorer, a: str, b: str) -> None:
    if a == b:
        s.add("birth_date", "exact", 7.0, a, b)
        return
    if len(a) == 8 and len(b) == 8 and a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        s.add("birth_date", "day and month swapped", 4.0, a, b)
        return
    distance = DamerauLevenshtein.distance(a, b)
    if distance <= 1:
        s.add("birth_date", "one typo", 3.5, a, b)
    elif distance == 2:
        s.add("birth_date", "two typos", 0.0, a, b)
    else:
        s.add("birth_date", "different", -5.0, a, b)


def score_contact(
    a: Prepared, b: Prepared, settings: MatchSettings = DEFAULT_SETTINGS, *, explain: bool = False
) -> PairScore:
    s = _Scorer(explain)
    af, al, bf, bl = a.first, a.last, b.first, b.last
    if af and al and bf and bl and af == bl and al == bf and af != al:
        s.add("first_name", "swapped with last name", 4.0, af, bf)
        s.add("last_name", "swapped with first name", 5.0, al, bl)
    else:
        if af and bf:
            _name_levels(s, "first_name", af, bf, (4.5, 3.0, 1.0, -3.0))
        if al and bl:
            _name_levels(s, "last_name", al, bl, (5.5, 4.0, 1.5, -4.0))
    if a.birth and b.birth:
        _birth(s, a.birth, b.birth)
    _near_digits(s, "national_id", a.national_id, b.national_id, (8.0, 4.0, -3.0))
    if a.email and b.email:
        s.add(
            *(("email", "exact", 9.0) if a.email == b.email else ("email", "different", -1.0)),
            a.email,
            b.email,
        )
    _exact(s, "phone", a.phone, b.phone, 8.0, -1.0)
    _address(s, a, b)
    if a.street2 and b.street2:
        _text_levels(s, "street2", a.street2, b.street2, ((0.9, 1.5),), -0.5)
    _exact(s, "region", a.region, b.region, 0.5, -1.0)
    if a.ico and b.ico:
        _exact(s, "ico", a.ico, b.ico, 2.0, -2.0)
    elif a.company and b.company:
        _text_levels(s, "company", a.company, b.company, ((0.9, 1.5),), -1.0)
    return PairScore(s.total, settings.decide(s.total), None, s.fields)


def score_pair(
    entity: str,
    a: Prepared,
    b: Prepared,
    settings: MatchSettings = DEFAULT_SETTINGS,
    *,
    explain: bool = False,
) -> PairScore:
    """Score two prepared records of one entity; ``explain`` lists every field's agreement."""
    if entity == "account":
        return score_account(a, b, settings, explain=explain)
    return score_contact(a, b, settings, explain=explain)


def hard_conflict(
    entity: str,
    a: Prepared,
    b: Prepared,
    score: float,
    settings: MatchSettings = DEFAULT_SETTINGS,
) -> bool:
    """True when two records must never share a cluster, even through others.

    Only identifiers decide this: a different valid IČO or DIČ, or another establishment
    of one company. Everything softer (a different birth date, other names) is weighed by
    the clustering against the evidence for a merge, since data entry mangles such values.
    """
    if a.ico and b.ico and a.ico != b.ico:
        return True
    if entity == "account" and a.dic and b.dic and a.dic != b.dic:
        return True
    return entity == "account" and bool(
        a.ico and b.ico and a.ico == b.ico and _different_establishment(a, b)
    )


def prepare_all(
    entity: str, records: Iterable[tuple[str, Mapping[str, str | None]]]
) -> list[Prepared]:
    return [prepare(entity, record_id, values) for record_id, values in records]
