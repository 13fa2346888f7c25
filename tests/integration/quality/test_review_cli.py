"""`spojka quality load / review / undo / report` against a real (SQLite) database."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spojka.core.db import upgrade


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    upgrade(sqlite_url)
    return {**os.environ, "SPOJKA_DATABASE_URL": sqlite_url, "SPOJKA_DATA_DIR": str(tmp_path)}


def _spojka(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spojka", "quality", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=300,
    )


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_load_review_accept_undo_and_report(env: dict[str, str], tmp_path: Path) -> None:
    crm = _csv(
        tmp_path / "crm.csv",
        [
            {
                "id": "C-1",
                "Název": "Stavby Novák s.r.o.",
                "Město": "Brno",
                "PSČ": "602 00",
                "IČO": "",
            },
            {
                "id": "C-2",
                "Název": "ACME s.r.o.",
                "Město": "Praha",
                "PSČ": "120 00",
                "IČO": "25596641",
            },
        ],
    )
    erp = _csv(
        tmp_path / "erp.csv",
        [
            {
                "id": "E-1",
                "Název": "Stavby Nováček s.r.o.",
                "Město": "Brno",
                "PSČ": "60200",
                "IČO": "",
            },
            {
                "id": "E-2",
                "Název": "Acme, spol. s r.o.",
                "Město": "Praha",
                "PSČ": "12000",
                "IČO": "25596642",
            },
        ],
    )
    first = _spojka(
        env, "load", str(crm), "--entity", "account", "--system", "crm", "--id-column", "id"
    )
    assert first.returncode == 0, first.stderr
    assert "separate: 2" in first.stdout
    second = _spojka(
        env, "load", str(erp), "--entity", "account", "--system", "erp", "--id-column", "id"
    )
    assert second.returncode == 0, second.stderr
    assert "merge: 1" in second.stdout and "review: 1" in second.stdout

    listing = _spojka(env, "review")
    assert listing.returncode == 0, listing.stderr
    assert "Stavby Nováček" in listing.stdout and "review 1" in listing.stdout
    assert "✔" in listing.stdout  # agreeing fields are marked

    accepted = _spojka(env, "review", "--accept", "1", "--actor", "jana.novakova")
    assert accepted.returncode == 0, accepted.stderr
    event = re.search(r"merge event (\d+)", accepted.stdout)
    assert event is not None
    assert "no candidate pairs" in _spojka(env, "review").stdout

    undone = _spojka(env, "undo", event.group(1))
    assert undone.returncode == 0, undone.stderr
    again = _spojka(env, "undo", event.group(1))
    assert again.returncode == 1 and "already undone" in again.stderr

    report = _spojka(env, "report")
    assert report.returncode == 0, report.stderr
    assert "IČO 25596642 has a wrong check digit" in report.stdout
    # the ERP, with its mistyped IČO, is the worst system and comes first
    assert report.stdout.index("erp") < report.stdout.index("crm")
