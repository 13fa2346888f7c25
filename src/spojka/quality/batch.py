"""Batch de-duplication fast path: candidate pairs and company scores as numpy arrays.

The rules are the ones in ``matching.py`` (``BlockingIndex`` blocks, ``score_account`` and
``hard_conflict`` weights); this module only evaluates them for all candidate pairs at once
instead of one Python call per pair. The unit tests check that both give the same pairs,
the same scores and the same clusters.

Every field weight is a multiple of 0.5, so a total is exact in floating point whatever
the order of the additions, and the scores here equal ``score_account``'s to the bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from spojka.quality.matching import Features, MatchSettings, Prepared, blocking_keys

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]

#: identifier columns a company record is blocked on, as in ``blocking_keys``
_COMPANY_IDENTIFIERS = ("ico", "dic", "email", "phone", "iban", "national_id", "domain")


# --------------------------------------------------------------------------- candidate pairs


def candidate_pairs(
    entity: str,
    prepared: Sequence[Prepared],
    settings: MatchSettings,
    companies: CompanyColumns | None = None,
) -> tuple[IntArray, IntArray]:
    """Every within-block pair ``left < right`` once, ordered by (left, right).

    The same pairs, in the same order, as ``BlockingIndex.iter_pairs``. Company records
    given as columns are blocked from their value codes, without key strings.
    """
    if companies is not None:
        return pairs_within_blocks(*company_blocks(companies, settings), companies.is_branch.size)
    key_id: dict[str, int] = {}
    limits: list[int] = []
    keys: list[int] = []
    rows: list[int] = []
    setdefault = key_id.setdefault
    for row, p in enumerate(prepared):
        for key, is_identifier in blocking_keys(entity, p):
            known = setdefault(key, len(limits))
            if known == len(limits):
                limits.append(
                    settings.max_identifier_block if is_identifier else settings.max_block
                )
            keys.append(known)
            rows.append(row)
    return pairs_within_blocks(
        np.asarray(keys, dtype=np.int64),
        np.asarray(rows, dtype=np.int64),
        np.asarray(limits, dtype=np.int64),
        len(prepared),
    )


def _name_keys(name: str) -> tuple[str, str, str]:
    """First six and last six letters of the name key, and its sorted word set."""
    compact = name.replace(" ", "")
    return compact[:6], compact[-6:], " ".join(sorted(name.split()))


def pairs_within_blocks(
    keys: IntArray, rows: IntArray, limits: IntArray, size: int
) -> tuple[IntArray, IntArray]:
    """Pairs of rows sharing a key whose block has 2..limit members, unique and sorted."""
    empty = np.zeros(0, dtype=np.int64)
    if keys.size == 0:
        return empty, empty
    counts = np.bincount(keys, minlength=limits.size)
    block_size = counts[keys]
    keep = (block_size >= 2) & (block_size <= limits[keys])
    keys, rows = keys[keep], rows[keep]
    if keys.size == 0:
        return empty, empty
    order = np.lexsort((rows, keys))
    keys, rows = keys[order], rows[order]
    # index one past the end of each element's block
    boundaries = np.flatnonzero(np.diff(keys)) + 1
    ends = np.repeat(
        np.append(boundaries, keys.size), np.diff(np.concatenate(([0], boundaries, [keys.size])))
    )
    after = ends - np.arange(keys.size) - 1  # block mates after each element
    total = int(after.sum())
    left_index = np.repeat(np.arange(keys.size), after)
    first_of = np.repeat(np.cumsum(after) - after, after)
    right_index = left_index + (np.arange(total) - first_of) + 1
    left, right = rows[left_index], rows[right_index]
    distinct = left != right
    codes = np.sort(left[distinct] * np.int64(size) + right[distinct])
    if codes.size:
        codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    return codes // size, codes % size


def company_blocks(
    columns: CompanyColumns, settings: MatchSettings
) -> tuple[IntArray, IntArray, IntArray]:
    """``blocking_keys`` of company records as (block, row) arrays and a size limit per block.

    A block is one value of one key kind, so the value codes of a column, shifted past the
    blocks of the kinds before it, number the blocks.
    """
    c = columns.codes
    kinds = [(c[name], settings.max_identifier_block) for name in _COMPANY_IDENTIFIERS]
    # the name keys of ``blocking_keys``, worked out once per distinct name
    name_keys = {name: _name_keys(name) for name in dict.fromkeys(columns.name) if name}
    missing = (None, None, None)
    keyed = [name_keys.get(name, missing) if name else missing for name in columns.name]
    for part in range(3):
        kinds.append((_codes([k[part] for k in keyed]), settings.max_block))
    blocks, rows, limits = [], [], []
    offset = 0
    for codes, limit in kinds:
        present = np.flatnonzero(codes >= 0)
        blocks.append(codes[present] + offset)
        rows.append(present)
        kind_size = int(codes.max()) + 1 if codes.size else 0
        limits.append(np.full(kind_size, limit, dtype=np.int64))
        offset += kind_size
    return np.concatenate(blocks), np.concatenate(rows), np.concatenate(limits)


# --------------------------------------------------------------------------- company scores


def _codes(values: Sequence[str | None]) -> IntArray:
    """One integer per distinct value (below ``len(values)``, not necessarily consecutive),
    -1 for a missing (None or empty) one."""
    lookup: dict[str | None, int] = {None: -1, "": -1}
    # the row where a value is first seen becomes its code: one pass, no Python loop
    # (a list first: numpy converts a list of ints faster than it pulls from an iterator)
    return np.array(list(map(lookup.setdefault, values, count())), dtype=np.int64)


def _pick(values: Sequence[str | None], index: IntArray) -> list[str]:
    return [values[i] or "" for i in index.tolist()]


def _pairwise(
    scorer: Callable[..., Any], left: list[str], right: list[str], dtype: Any
) -> NDArray[Any]:
    if not left:
        return np.zeros(0, dtype=dtype)
    return np.asarray(process.cpdist(left, right, scorer=scorer, dtype=dtype, workers=1))


def _sim(values: Sequence[str | None], a: IntArray, b: IntArray, same: BoolArray) -> FloatArray:
    """``matching._sim`` for pairs (a, b): 1.0 when equal, else the better of JW and token sort."""
    out = np.ones(a.size, dtype=np.float64)
    todo = np.flatnonzero(~same)
    if todo.size:
        left, right = _pick(values, a[todo]), _pick(values, b[todo])
        jw = _pairwise(JaroWinkler.normalized_similarity, left, right, np.float64)
        ts = _pairwise(fuzz.token_sort_ratio, left, right, np.float64) / 100.0
        out[todo] = np.maximum(jw, ts)
    return out


def _near_digits(
    values: Sequence[str | None],
    codes: IntArray,
    a: IntArray,
    b: IntArray,
    weights: tuple[float, float, float],
) -> FloatArray:
    """``matching._near_digits``: exact / one typo / different, 0 when either is missing."""
    ca, cb = codes[a], codes[b]
    both = (ca >= 0) & (cb >= 0)
    out = np.zeros(a.size, dtype=np.float64)
    same = both & (ca == cb)
    out[same] = weights[0]
    differ = np.flatnonzero(both & ~same)
    if differ.size:
        distance = _pairwise(
            DamerauLevenshtein.distance,
            _pick(values, a[differ]),
            _pick(values, b[differ]),
            np.int64,
        )
        out[differ] = np.where(distance <= 1, weights[1], weights[2])
    return out


def _exact(codes: IntArray, a: IntArray, b: IntArray, agree: float, disagree: float) -> FloatArray:
    ca, cb = codes[a], codes[b]
    both = (ca >= 0) & (cb >= 0)
    return np.where(both, np.where(ca == cb, agree, disagree), 0.0)


@dataclass(slots=True)
class CompanyColumns:
    """The features of prepared company records, column by column."""

    name: list[str | None]
    city: list[str | None]
    street: list[str | None]
    zip: list[str | None]
    ico_any: list[str | None]
    codes: dict[str, IntArray]
    is_branch: BoolArray

    @classmethod
    def of(cls, features: Features) -> CompanyColumns:
        """The columns of a prepared table (``matching.prepare_columns``)."""
        name, city, street = features["name"], features["city"], features["street"]
        zip_codes = features["zip"]
        ico_any = [
            ico or raw for ico, raw in zip(features["ico"], features["ico_raw"], strict=True)
        ]
        codes = {
            "name": _codes(name),
            "city": _codes(city),
            "street": _codes(street),
            "zip": _codes(zip_codes),
            "zip2": _codes([z[:2] if z else None for z in zip_codes]),
            "ico_any": _codes(ico_any),
            # blocking only; ``blocking_keys`` takes a national id of five digits or more
            "national_id": _codes(
                [n if n and len(n) >= 5 else None for n in features["national_id"]]
            ),
        }
        for feature in ("ico", "legal_form", "dic", "email", "domain", "phone", "iban", "house"):
            codes[feature] = _codes(features[feature])
        is_branch = np.asarray(features["is_branch"], dtype=np.bool_)
        return cls(name, city, street, zip_codes, ico_any, codes, is_branch)


def score_companies(
    columns: CompanyColumns, a: IntArray, b: IntArray
) -> tuple[FloatArray, BoolArray]:
    """``score_account(...).score`` and ``hard_conflict`` for every pair (a[i], b[i])."""
    c = columns.codes
    n = a.size
    total = np.zeros(n, dtype=np.float64)

    def both(codes: IntArray) -> tuple[IntArray, IntArray, BoolArray]:
        left, right = codes[a], codes[b]
        return left, right, (left >= 0) & (right >= 0)

    # identifiers first ------------------------------------------------------------------
    ico_a, ico_b, ico_both = both(c["ico"])
    same_ico = ico_both & (ico_a == ico_b)
    branch_a, branch_b = columns.is_branch[a], columns.is_branch[b]
    # _different_establishment
    other_establishment = same_ico & (branch_a != branch_b)
    both_branches = np.flatnonzero(same_ico & branch_a & branch_b)
    if both_branches.size:
        pa, pb = a[both_branches], b[both_branches]
        name_sim = _sim(columns.name, pa, pb, c["name"][pa] == c["name"][pb])
        elsewhere = (c["city"][pa] != c["city"][pb]) | (c["zip"][pa] != c["zip"][pb])
        other_establishment[both_branches] = (name_sim < 0.94) & elsewhere
    # _moved_or_branch
    city_a, city_b, city_both = both(c["city"])
    zip2_a, zip2_b, zip_both = both(c["zip2"])
    moved = (
        same_ico
        & ~other_establishment
        & city_both
        & (city_a != city_b)
        & zip_both
        & (zip2_a != zip2_b)
    )
    total[other_establishment] = -20.0
    total[moved] = 5.0
    same_valid = same_ico & ~other_establishment & ~moved
    total[same_valid] = 20.0
    different_ico = ico_both & (ico_a != ico_b)
    total[different_ico] = -20.0
    # an invalid IČO on either side: digits compared with one typo allowed
    weak = np.flatnonzero(~ico_both)
    if weak.size:
        total[weak] += _near_digits(
            columns.ico_any, c["ico_any"], a[weak], b[weak], (3.0, 3.0, -1.0)
        )

    hard = different_ico | other_establishment
    dic_a, dic_b, dic_both = both(c["dic"])
    hard |= dic_both & (dic_a != dic_b)

    # the identifier decided the others: only the rest are scored field by field ----------
    rest = np.flatnonzero(~(other_establishment | same_valid | different_ico))
    ra, rb = a[rest], b[rest]
    score = np.zeros(rest.size, dtype=np.float64)
    company_level = ~moved[rest]

    name_a, name_b = c["name"][ra], c["name"][rb]
    name_both = np.flatnonzero((name_a >= 0) & (name_b >= 0))
    if name_both.size:
        na, nb = ra[name_both], rb[name_both]
        equal = name_a[name_both] == name_b[name_both]
        sim = np.ones(name_both.size, dtype=np.float64)
        todo = np.flatnonzero(~equal)
        if todo.size:
            sim[todo] = (
                _pairwise(
                    fuzz.token_sort_ratio,
                    _pick(columns.name, na[todo]),
                    _pick(columns.name, nb[todo]),
                    np.float64,
                )
                / 100.0
            )
        score[name_both] += np.select(
            [sim >= 1.0, sim >= 0.94, sim >= 0.88, sim >= 0.75], [8.0, 6.0, 3.5, 0.0], -6.0
        )
        form_a, form_b = c["legal_form"][na], c["legal_form"][nb]
        score[name_both] += np.where((form_a >= 0) & (form_b >= 0) & (form_a != form_b), -2.0, 0.0)
    score += np.where(company_level, _exact(c["dic"], ra, rb, 10.0, -6.0), 0.0)
    score += _exact(c["email"], ra, rb, 7.0, -0.5)
    score += np.where(company_level, _exact(c["domain"], ra, rb, 5.0, -2.0), 0.0)
    score += _exact(c["phone"], ra, rb, 6.0, -0.5)
    score += _exact(c["iban"], ra, rb, 8.0, -1.0)
    score += _address(columns, ra, rb)
    total[rest] += score
    return total, hard


def _address(columns: CompanyColumns, a: IntArray, b: IntArray) -> FloatArray:
    """``matching._address`` for pairs (a, b)."""
    c = columns.codes
    score = _near_digits(columns.zip, c["zip"], a, b, (2.5, 0.5, -2.0))
    city_a, city_b = c["city"][a], c["city"][b]
    cities = np.flatnonzero((city_a >= 0) & (city_b >= 0))
    if cities.size:
        sim = _sim(columns.city, a[cities], b[cities], city_a[cities] == city_b[cities])
        score[cities] += np.select([sim >= 1.0, sim >= 0.9], [1.5, 1.0], -1.5)
    street_a, street_b = c["street"][a], c["street"][b]
    house_a, house_b = c["house"][a], c["house"][b]
    houses = (house_a >= 0) & (house_b >= 0)
    streets = (street_a >= 0) & (street_b >= 0)
    on_street = np.flatnonzero(streets)
    if on_street.size:
        sim = _sim(
            columns.street, a[on_street], b[on_street], street_a[on_street] == street_b[on_street]
        )
        both_houses = houses[on_street]
        same_house = both_houses & (house_a[on_street] == house_b[on_street])
        score[on_street] += np.select(
            [sim >= 0.9, sim >= 0.8],
            [np.where(same_house, 4.5, np.where(both_houses, 1.0, 2.0)), 0.5],
            -1.5,
        )
    numbers_only = ~streets & houses
    score += np.where(numbers_only, np.where(house_a == house_b, 1.0, -1.0), 0.0)
    return score
