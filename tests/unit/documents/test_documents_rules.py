"""Printed invoices (PDF text layer) in cs/sk/en/de, in layouts the rules were and were not
developed on, read template-free."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from spojka.documents.reader import extract_file


def _accuracy(corpus: list[Path], score: ModuleType) -> tuple[float, list[str]]:
    right = total = 0
    misses = []
    for path in corpus:
        want = json.loads(path.with_name(path.name + ".expected.json").read_text())
        if want["_meta"]["kind"] != "text":
            continue
        out = extract_file(path).to_output()
        assert out["source"] == "text"
        for field, ok in score.compare(out, want).items():
            if field in score.HEADER:
                total += 1
                right += ok
                if not ok:
                    misses.append(f"{path.name}:{field}")
    return right / total, misses


def test_header_fields_of_text_pdfs_in_development_layouts(
    dev_corpus: list[Path], score: ModuleType
) -> None:
    accuracy, misses = _accuracy(dev_corpus, score)
    assert accuracy >= 0.95, misses


def test_header_fields_of_text_pdfs_in_held_out_layouts(
    heldout_corpus: list[Path], score: ModuleType
) -> None:
    accuracy, misses = _accuracy(heldout_corpus, score)
    assert accuracy >= 0.95, misses


def test_every_text_field_says_where_it_was_found(dev_corpus: list[Path]) -> None:
    path = next(p for p in dev_corpus if "-text-" in p.name)
    fields = extract_file(path).to_output()["fields"]
    number = fields["number"]
    assert number["source"] == "text"
    assert number["page"] == 1 and len(number["bbox"]) == 4
    assert 0 < number["confidence"] <= 1


def test_a_value_not_printed_stays_null(docgen: ModuleType, tmp_path: Path) -> None:
    import random

    doc = docgen.make_doc(random.Random(21), "en")
    doc.vs = None
    path = tmp_path / "no-vs.pdf"
    path.write_bytes(docgen.render_pdf(doc, "classic", random.Random(2)))
    out = extract_file(path).to_output()
    assert out["variable_symbol"] is None
    assert out["number"] == doc.number
