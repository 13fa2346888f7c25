"""`spojka quality dedupe` as a user runs it: a real CSV in, id,cluster_id out."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from spojka.quality.generator import generate_companies


def _spojka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spojka", *args], capture_output=True, text=True, timeout=300
    )


def _write(path: Path, rows: list[dict[str, str]], headers: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_dedupe_auto_maps_czech_headers_and_writes_every_row(tmp_path: Path) -> None:
    source = tmp_path / "firmy.csv"
    rows = [
        {"Kód": "1", "Název": "ACME s.r.o.", "IČO": "25596641", "Město": "Praha", "PSČ": "11000"},
        {
            "Kód": "2",
            "Název": "Acme, spol. s r.o.",
            "IČO": "25596641",
            "Město": "Praha",
            "PSČ": "110 00",
        },
        {"Kód": "3", "Název": "Omega Tatry a.s.", "IČO": "", "Město": "Poprad", "PSČ": "05801"},
    ]
    _write(source, rows, ["Kód", "Název", "IČO", "Město", "PSČ"])
    out = tmp_path / "clusters.csv"
    done = _spojka(
        "quality",
        "dedupe",
        str(source),
        "--entity",
        "account",
        "--id-column",
        "Kód",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "records" in done.stdout and "clusters" in done.stdout
    with out.open(encoding="utf-8") as handle:
        clusters = {row["id"]: row["cluster_id"] for row in csv.DictReader(handle)}
    assert clusters["1"] == clusters["2"]
    assert clusters["3"] == "3"


def test_dedupe_with_explicit_columns_on_generated_data(tmp_path: Path) -> None:
    rows = generate_companies(500, seed=2)
    for row in rows:
        row["Firma"] = row.pop("name")
    source = tmp_path / "accounts.csv"
    _write(source, rows, ["id", "Firma", "ico", "email", "phone", "street", "city", "zip"])
    out = tmp_path / "out" / "clusters.csv"
    done = _spojka(
        "quality",
        "dedupe",
        str(source),
        "--entity",
        "account",
        "--id-column",
        "id",
        "--column",
        "name=Firma",
        "--column",
        "ico=ico",
        "--column",
        "zip=zip",
        "--column",
        "city=city",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [r["id"] for r in written] == [r["id"] for r in rows]
    assert len({r["cluster_id"] for r in written}) < len(rows)


def test_unknown_field_or_column_is_one_clear_line(tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    _write(source, [{"id": "1", "name": "Acme"}], ["id", "name"])
    out = str(tmp_path / "c.csv")
    base = ["quality", "dedupe", str(source), "--entity", "account", "--id-column", "id"]
    bad_field = _spojka(*base, "--column", "colour=name", "--out", out)
    assert bad_field.returncode == 1
    assert "unknown field 'colour'" in bad_field.stderr
    assert "Traceback" not in bad_field.stderr
    bad_column = _spojka(*base, "--column", "name=Firma", "--out", out)
    assert bad_column.returncode == 1
    assert "column 'Firma'" in bad_column.stderr
    bad_entity = _spojka(*base[:3], "--entity", "invoice", *base[5:], "--out", out)
    assert bad_entity.returncode == 1 and "unknown entity" in bad_entity.stderr


def test_dedupe_on_two_processes_writes_the_same_clusters_as_on_one(tmp_path: Path) -> None:
    rows = generate_companies(5000, seed=4)  # enough distinct values for a second process
    source = tmp_path / "firmy.csv"
    headers = ["id", "name", "ico", "dic", "email", "phone", "web", "street", "city", "zip"]
    _write(source, rows, headers)
    written: list[list[dict[str, str]]] = []
    for workers in ("1", "2"):
        out = tmp_path / f"clusters-{workers}.csv"
        done = _spojka(
            "quality",
            "dedupe",
            str(source),
            "--entity",
            "account",
            "--id-column",
            "id",
            "--workers",
            workers,
            "--out",
            str(out),
        )
        assert done.returncode == 0, done.stderr
        with out.open(encoding="utf-8") as handle:
            written.append(list(csv.DictReader(handle)))
    assert written[0] == written[1]
    assert len({r["cluster_id"] for r in written[0]}) < len(rows)
