"""The batch fast path (column-wise preparation, numpy pairs and company scores) gives exactly
what the record-by-record rules give: the same features, pairs, scores and clusters."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pytest

from spojka.quality.batch import CompanyColumns, candidate_pairs, score_companies
from spojka.quality.clustering import ScoredLink, cluster_links, dedupe, dedupe_columns
from spojka.quality.dedupe_csv import dedupe_file
from spojka.quality.generator import generate_companies, generate_people
from spojka.quality.matching import (
    DEFAULT_SETTINGS,
    FEATURES,
    BlockingIndex,
    features_of,
    hard_conflict,
    prepare,
    prepare_columns,
    prepared_rows,
    score_pair,
)

Records = list[tuple[str, dict[str, str | None]]]


def _companies(count: int, seed: int) -> Records:
    """Generated companies with the web column as the domain field, plus awkward values."""
    rng = random.Random(seed)
    records: Records = []
    for row in generate_companies(count, seed=seed):
        values: dict[str, str | None] = {k: v for k, v in row.items() if k != "web"}
        values["domain"] = row.get("web")
        roll = rng.random()
        if roll < 0.03:
            values["domain"] = "not a host!"  # invalid: the e-mail's host stays the domain
        elif roll < 0.06:
            values["house_number"] = " 12 a "
        elif roll < 0.08:
            values["name"] = "   "
        elif roll < 0.10:
            values["ico"] = "IČO: " + (row.get("ico") or "")
        elif roll < 0.12:
            values["phone"] = "+420 ٦٠١ 123 456"  # non-ASCII digits
        elif roll < 0.13:
            values["street"] = "Dlouhá\t12/3\x07"
        records.append((row["id"], values))
    return records


def _people(count: int, seed: int) -> Records:
    records: Records = []
    for n, row in enumerate(generate_people(count, seed=seed)):
        values: dict[str, str | None] = dict(row)
        if n % 17 == 0:
            values["full_name"] = f"{row.get('first_name', '')} {row.get('last_name', '')}"
            values["first_name"] = values["last_name"] = ""
        if n % 23 == 0:
            values["national_id"] = "8001011234"
        records.append((row["id"], values))
    return records


def _columns(records: Records) -> tuple[list[str], dict[str, list[str | None]]]:
    fields = sorted({field for _, values in records for field in values})
    ids = [record_id for record_id, _ in records]
    return ids, {f: [values.get(f) for _, values in records] for f in fields}


def _reference_dedupe(entity: str, records: Records) -> dict[str, str]:
    """The record-by-record clustering the batch path replaced: one Python call per pair."""
    prepared = [prepare(entity, record_id, values) for record_id, values in records]
    index = BlockingIndex(entity)
    for position, p in enumerate(prepared):
        index.add(position, p)
    settings = DEFAULT_SETTINGS
    links: list[ScoredLink] = []
    negatives: list[tuple[int, int]] = []
    opposing: list[tuple[int, int, float]] = []
    for a, b in index.iter_pairs():
        score = score_pair(entity, prepared[a], prepared[b]).score
        if hard_conflict(entity, prepared[a], prepared[b], score):
            negatives.append((a, b))
        elif score < settings.cannot_link_below:
            opposing.append((a, b, score))
        elif score >= settings.review_threshold:
            decision = "merge" if score >= settings.merge_threshold else "review"
            links.append(ScoredLink(a, b, score, decision))
    linked = {x for link in links if link.decision == "merge" for x in (link.left, link.right)}
    uf = cluster_links(
        len(prepared),
        links,
        [(a, b) for a, b in negatives if a in linked and b in linked],
        [(a, b, s) for a, b, s in opposing if a in linked and b in linked],
    )
    names: dict[int, str] = {}
    return {
        p.record_id: names.setdefault(uf.find(position), p.record_id)
        for position, p in enumerate(prepared)
    }


def _same_rows(left: Iterable[object], right: Iterable[object]) -> None:
    for a, b in zip(left, right, strict=True):
        for name in ("record_id", *FEATURES):
            assert getattr(a, name) == getattr(b, name), (name, getattr(a, "record_id", None))


@pytest.mark.parametrize("entity", ["account", "contact"])
def test_column_preparation_gives_the_features_of_record_preparation(entity: str) -> None:
    records = _companies(1500, seed=4) if entity == "account" else _people(1500, seed=4)
    ids, columns = _columns(records)
    features = prepare_columns(entity, ids, columns)
    one_by_one = [prepare(entity, record_id, values) for record_id, values in records]
    _same_rows(prepared_rows(ids, features), one_by_one)
    assert features_of(one_by_one) == features


def test_a_column_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="column 'name'"):
        prepare_columns("account", ["a", "b"], {"name": ["Alfa s.r.o."]})


@pytest.mark.parametrize("entity", ["account", "contact"])
def test_candidate_pairs_are_the_blocking_index_pairs_in_its_order(entity: str) -> None:
    records = _companies(3000, seed=6) if entity == "account" else _people(3000, seed=6)
    prepared = [prepare(entity, record_id, values) for record_id, values in records]
    index = BlockingIndex(entity)
    for position, p in enumerate(prepared):
        index.add(position, p)
    expected = list(index.iter_pairs())
    left, right = candidate_pairs(entity, prepared, DEFAULT_SETTINGS)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == expected
    if entity == "account":
        columns = CompanyColumns.of(features_of(prepared))
        left, right = candidate_pairs(entity, prepared, DEFAULT_SETTINGS, columns)
        assert list(zip(left.tolist(), right.tolist(), strict=True)) == expected


def _check_company_scores(records: Records, pairs: list[tuple[int, int]]) -> None:
    prepared = [prepare("account", record_id, values) for record_id, values in records]
    columns = CompanyColumns.of(features_of(prepared))
    left = np.asarray([a for a, _ in pairs], dtype=np.int64)
    right = np.asarray([b for _, b in pairs], dtype=np.int64)
    scores, hard = score_companies(columns, left, right)
    for (a, b), score, conflict in zip(pairs, scores.tolist(), hard.tolist(), strict=True):
        expected = score_pair("account", prepared[a], prepared[b]).score
        assert score == expected, (records[a], records[b])
        assert conflict == hard_conflict("account", prepared[a], prepared[b], expected)


def test_company_scores_equal_the_pair_scorer_on_every_candidate_pair() -> None:
    records = _companies(3000, seed=7)
    prepared = [prepare("account", record_id, values) for record_id, values in records]
    left, right = candidate_pairs("account", prepared, DEFAULT_SETTINGS)
    _check_company_scores(records, list(zip(left.tolist(), right.tolist(), strict=True)))


def test_company_scores_equal_the_pair_scorer_on_hand_made_edge_cases() -> None:
    seat = {"name": "ACME s.r.o.", "ico": "25596641", "city": "Praha", "zip": "110 00"}
    variants: list[Mapping[str, str | None]] = [
        seat,
        {**seat, "name": "ACME s.r.o., pobočka Brno", "city": "Brno", "zip": "602 00"},
        {**seat, "name": "ACME s.r.o., provozovna Brno", "city": "Brno", "zip": "602 00"},
        {**seat, "name": "ACME s.r.o., provozovna Brno", "city": "Brno", "zip": "602 01"},
        {**seat, "name": "ACME a.s.", "city": "Ostrava", "zip": "702 00"},
        {**seat, "ico": "25596642", "street": "Dlouhá 12"},
        {**seat, "ico": "2559664", "street": "Dlouhá 12/3"},
        {**seat, "ico": "27082440", "dic": "CZ27082440"},
        {"name": "Acme", "street": "Dlouhá", "house_number": "12"},
        {"name": "Acme", "house_number": "12"},
        {"name": "Acme", "house_number": "13", "email": "info@acme.cz", "domain": "acme.cz"},
        {"name": "Acme", "email": "info@gmail.com", "phone": "601 123 456"},
        {"name": "Acme Praha", "city": "Praha - Vinohrady", "zip": "12000"},
        {"name": "Praha Acme", "city": "Vinohrady Praha", "zip": "12001"},
        {"name": None, "ico": "25596641", "iban": "CZ6508000000192000145399"},
        {},
    ]
    records: Records = [(f"h{n}", dict(values)) for n, values in enumerate(variants)]
    pairs = [(a, b) for a in range(len(records)) for b in range(a + 1, len(records))]
    _check_company_scores(records, pairs)


@pytest.mark.parametrize("entity", ["account", "contact"])
def test_clusters_are_those_of_the_record_by_record_clustering(entity: str) -> None:
    records = _companies(4000, seed=8) if entity == "account" else _people(4000, seed=8)
    expected = _reference_dedupe(entity, records)
    assert dedupe(entity, records).cluster_of == expected
    ids, columns = _columns(records)
    result = dedupe_columns(entity, ids, columns)
    assert result.cluster_of == expected
    assert result.records == len(records)


def test_dedupe_file_reads_columns_like_the_dict_reader(tmp_path: Path) -> None:
    rows = generate_companies(800, seed=9)
    path = tmp_path / "firmy.csv"
    headers = ["id", "name", "ico", "email", "web", "street", "city", "zip"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(headers)
        for n, row in enumerate(rows):
            cells = [row.get(h, "") for h in headers]
            if n % 50 == 0:
                cells = cells[:4]  # a short row: the missing cells are empty
            writer.writerow(cells)
            if n % 97 == 0:
                handle.write("\r\n")  # a blank line is skipped
    result, mapping, ids = dedupe_file(path, entity="account", id_column="id")
    assert ids == [row["id"] for row in rows]
    with path.open(encoding="utf-8", newline="") as handle:
        table = [r for r in csv.DictReader(handle, delimiter=";")]
    records: Records = [
        (r["id"], {field: r.get(column) or "" for field, column in mapping.items()}) for r in table
    ]
    assert result.cluster_of == _reference_dedupe("account", records)


def test_normalising_on_two_processes_gives_the_one_process_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from spojka.quality import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN_VALUES", 100)
    assert parallel._can_fork()  # the second process really is forked here
    records = _companies(1200, seed=12)
    ids, columns = _columns(records)
    assert prepare_columns("account", ids, columns, workers=2) == prepare_columns(
        "account", ids, columns, workers=1
    )
    assert parallel.map_distinct([(str.upper, ["a", "b", "c"] * 50)], 3) == [["A", "B", "C"] * 50]


def test_dedupe_file_clusters_alike_on_one_or_two_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spojka.quality import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN_VALUES", 100)
    rows = generate_companies(1500, seed=13)
    path = tmp_path / "firmy.csv"
    headers = ["id", "name", "ico", "dic", "email", "phone", "web", "street", "city", "zip"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    one, _, _ = dedupe_file(path, entity="account", id_column="id", workers=1)
    two, _, _ = dedupe_file(path, entity="account", id_column="id", workers=2)
    assert one.cluster_of == two.cluster_of
    assert one.pairs_compared == two.pairs_compared


def _die(k: int) -> list[list[object]]:
    import os

    os._exit(3)


def test_a_lost_worker_leaves_its_share_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from spojka.quality import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN_VALUES", 10)
    monkeypatch.setattr(parallel, "_run_shared_part", _die)  # the forked worker exits at once
    assert parallel._can_fork()  # the worker really is forked here
    values = [f"v{n}" for n in range(40)]
    assert parallel.map_distinct([(str.upper, values)], 2) == [[v.upper() for v in values]]
