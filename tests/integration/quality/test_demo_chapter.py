"""The demo's data-quality chapter: what a viewer reads, and the store it leaves behind."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.demo import CHAPTERS, DemoContext
from spojka.quality import service
from spojka.quality.demo import quality_chapter


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Spojka]:
    settings = load_settings(data_dir=tmp_path / "data")
    yield bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    reset()


def _tell(app: Spojka) -> tuple[list[str], DemoContext]:
    out = io.StringIO()
    ctx = DemoContext(app=app, console=Console(file=out, width=100))
    quality_chapter(ctx)
    return out.getvalue().splitlines(), ctx


def test_chapter_is_registered_in_the_demo() -> None:
    assert quality_chapter in [chapter for _, chapter in CHAPTERS]


def test_chapter_tells_duplicates_golden_record_review_and_scores(app: Spojka) -> None:
    lines, ctx = _tell(app)
    text = "\n".join(lines)
    assert len(lines) <= 15
    facts = ctx.facts["quality"]
    assert facts["records"] == 800
    assert facts["clusters"] < facts["records"]
    assert facts["precision"] >= 0.95 and facts["recall"] >= 0.9
    assert "← CRM (owner system)" in text and "← ERP (owner system)" in text
    assert "agree:" in text and "disagree:" in text
    assert "CRM" in text and "ERP" in text and "PM" in text
    assert lines[-1].strip() == "next: spojka quality review · spojka quality report"
    with transaction(app.sessions) as db:
        assert len(service.open_reviews(db_session=db, entity="account")) == facts["for_review"]


def test_second_run_tells_the_same_story(app: Spojka) -> None:
    _, first = _tell(app)
    _, second = _tell(app)
    assert second.facts["quality"] == first.facts["quality"]
