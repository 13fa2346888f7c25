"""Matching: exact-identifier rules, explainable scores, clustering guards, incremental use."""

from __future__ import annotations

import itertools

from spojka.quality.clustering import MatchIndex, dedupe
from spojka.quality.generator import generate_companies, generate_people, true_pairs
from spojka.quality.matching import BlockingIndex, prepare, score_pair

ACME = {
    "name": "ACME s.r.o.",
    "ico": "25596641",
    "street": "Vinohradská 1511/230",
    "city": "Praha",
    "zip": "100 00",
}


def _score(a: dict[str, str], b: dict[str, str], entity: str = "account"):  # type: ignore[no-untyped-def]
    return score_pair(entity, prepare(entity, "a", a), prepare(entity, "b", b), explain=True)


def test_same_valid_ico_merges_whatever_the_name_spelling() -> None:
    result = _score(ACME, {**ACME, "name": "Acme, spol. s r.o."})
    assert result.decision == "merge"
    assert result.rule == "same valid IČO"
    assert "ico" in result.agreeing


def test_a_branch_sharing_the_ico_is_not_merged_with_its_seat() -> None:
    branch = {**ACME, "name": "ACME s.r.o., pobočka Brno", "city": "Brno", "zip": "602 00"}
    result = _score(ACME, branch)
    assert result.decision == "separate"
    assert result.rule == "same IČO, different establishment"


def test_different_valid_icos_never_merge_even_with_the_same_name() -> None:
    result = _score(ACME, {**ACME, "ico": "27082440"})
    assert result.decision == "separate"
    assert "ico" in result.disagreeing


def test_a_mistyped_ico_is_outweighed_by_name_and_address() -> None:
    result = _score(ACME, {**ACME, "ico": "25596642", "name": "Acme spol s r o"})
    assert result.decision == "merge"
    levels = {f.field: f.level for f in result.fields}
    assert levels["ico"] == "one typo"
    assert levels["name"] == "exact"


def test_similar_names_in_the_same_town_go_to_review_not_merge() -> None:
    a = {"name": "Stavby Novák s.r.o.", "city": "Brno", "zip": "602 00"}
    b = {"name": "Stavby Nováček s.r.o.", "city": "Brno", "zip": "602 00"}
    assert _score(a, b).decision in {"review", "separate"}


def test_swapped_first_and_last_name_still_match() -> None:
    a = {"first_name": "Jan", "last_name": "Novák", "birth_date": "1980-03-12", "zip": "11000"}
    b = {"first_name": "Novak", "last_name": "Jan", "birth_date": "12. 3. 1980", "zip": "110 00"}
    result = _score(a, b, "contact")
    assert result.decision == "merge"
    assert {f.level for f in result.fields} >= {"swapped with last name"}


def test_explanation_lists_agreeing_and_disagreeing_fields() -> None:
    a = {**ACME, "ico": "", "phone": "601 123 456", "email": "info@acme.cz"}
    b = {**ACME, "ico": "", "phone": "+420 601 123 456", "email": "obchod@acme.cz"}
    result = _score(a, b)
    assert {"name", "phone", "domain", "zip"} <= set(result.agreeing)
    assert "email" in result.disagreeing
    assert 0.0 < result.probability <= 1.0


def test_blocking_compares_far_fewer_pairs_than_all_pairs() -> None:
    rows = generate_companies(2000, seed=3)
    index = BlockingIndex("account")
    for position, row in enumerate(rows):
        index.add(position, prepare("account", row["id"], row))
    assert len(index.pairs()) < 2000 * 1999 / 2 / 20


def _f1(rows: list[dict[str, str]], cluster_of: dict[str, str]) -> float:
    truth = {tuple(sorted(p)) for p in true_pairs(rows)}
    groups: dict[str, list[str]] = {}
    for record_id, cluster in cluster_of.items():
        groups.setdefault(cluster, []).append(record_id)
    found = {tuple(sorted(p)) for ids in groups.values() for p in itertools.combinations(ids, 2)}
    hits = len(truth & found)
    precision, recall = hits / max(len(found), 1), hits / max(len(truth), 1)
    return 2 * precision * recall / max(precision + recall, 1e-9)


def test_dedupe_finds_generated_company_duplicates() -> None:
    rows = generate_companies(3000, seed=5)
    result = dedupe("account", [(row["id"], row) for row in rows])
    assert result.records == 3000
    assert set(result.cluster_of) == {row["id"] for row in rows}
    assert _f1(rows, result.cluster_of) > 0.95


def test_dedupe_finds_generated_people_duplicates() -> None:
    rows = generate_people(3000, seed=5)
    result = dedupe("contact", [(row["id"], row) for row in rows])
    assert _f1(rows, result.cluster_of) > 0.95


def test_singletons_keep_their_own_id_as_cluster() -> None:
    rows = [("x1", {"name": "Alfa s.r.o."}), ("x2", {"name": "Omega Tatry a.s."})]
    assert dedupe("account", rows).cluster_of == {"x1": "x1", "x2": "x2"}


def test_chaining_through_a_weak_middle_record_is_refused() -> None:
    # A and C have different valid IČO; B (no IČO) resembles both
    a = ("A", {"name": "Alfa Stavby s.r.o.", "ico": "25596641", "zip": "60200", "city": "Brno"})
    b = ("B", {"name": "Alfa Stavby s.r.o.", "zip": "60200", "city": "Brno", "phone": "601123456"})
    c = (
        "C",
        {
            "name": "Alfa Stavby s.r.o.",
            "ico": "27082440",
            "zip": "60200",
            "city": "Brno",
            "phone": "601123456",
        },
    )
    clusters = dedupe("account", [a, b, c]).cluster_of
    assert clusters["A"] != clusters["C"]


def test_incremental_match_files_a_new_duplicate_into_its_cluster() -> None:
    rows = generate_companies(1500, seed=11)
    records = [(row["id"], row) for row in rows]
    index = MatchIndex.from_dedupe("account", records, dedupe("account", records))
    original = next(row for row in rows if row["ico"] and len(row["ico"]) == 8 and row["street"])
    copy = {**original, "name": original["name"].upper(), "phone": "", "email": ""}
    outcome = index.add("NEW-1", copy)
    assert outcome.decision == "merge"
    assert index.cluster_id("NEW-1") == index.cluster_id(original["id"])
    stranger = {"name": "Zcela Jiná Firma a.s.", "ico": "", "city": "Poprad", "zip": "05801"}
    assert index.add("NEW-2", stranger).decision == "separate"
    assert index.cluster_id("NEW-2") == "NEW-2"


def test_incremental_filing_agrees_with_batch_clustering() -> None:
    rows = generate_companies(2000, seed=21)
    records = [(row["id"], row) for row in rows]
    head, tail = records[:1800], records[1800:]
    index = MatchIndex.from_dedupe("account", head, dedupe("account", head))
    for record_id, values in tail:
        index.add(record_id, values)
    incremental = {record_id: index.cluster_id(record_id) for record_id, _ in records}
    assert _f1(rows, incremental) > 0.97
    assert _f1(rows, incremental) > _f1(rows, dedupe("account", records).cluster_of) - 0.01


def test_a_new_record_with_another_valid_ico_is_never_filed_into_a_cluster() -> None:
    base = {"name": "Alfa Stavby s.r.o.", "zip": "60200", "city": "Brno", "phone": "601123456"}
    records = [("A", {**base, "ico": "25596641"}), ("B", {**base})]
    index = MatchIndex.from_dedupe("account", records, dedupe("account", records))
    assert index.cluster_id("A") == index.cluster_id("B")
    outcome = index.add("C", {**base, "ico": "27082440"})
    assert outcome.decision != "merge"
    assert index.cluster_id("C") == "C"
