"""Scans: rendered, rotated, noisy page images read by Tesseract (ces+slk+eng)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import pytest

from spojka.documents.ocr_setup import ensure_document_tools
from spojka.documents.reader import extract_file


@pytest.mark.slow
def test_a_noisy_scan_is_read_by_ocr(docgen: ModuleType, score: ModuleType, tmp_path: Path) -> None:
    ensure_document_tools()  # installs tesseract-ocr with ces/slk/eng when missing
    rng = random.Random(4242)
    right = total = 0
    for lang, layout in (("cs", "classic"), ("sk", "stacked")):
        doc = docgen.make_doc(rng, lang)
        path = tmp_path / f"scan-{lang}.png"
        path.write_bytes(docgen.scan_image(docgen.render_pdf(doc, layout, rng), rng))
        out = extract_file(path).to_output()
        assert out["source"] == "ocr"
        assert out["fields"]["number"]["source"] == "ocr"
        for field, ok in score.compare(out, json.loads(json.dumps(doc.expected()))).items():
            if field in score.HEADER:
                right, total = right + ok, total + 1
    assert right / total >= 0.85


@pytest.mark.slow
def test_a_pdf_without_text_layer_goes_to_ocr(docgen: ModuleType, tmp_path: Path) -> None:
    from PIL import Image

    rng = random.Random(99)
    doc = docgen.make_doc(rng, "cs")
    png = docgen.scan_image(docgen.render_pdf(doc, "keyvalue", rng), rng)
    path = tmp_path / "scan.pdf"
    Image.open(__import__("io").BytesIO(png)).convert("RGB").save(path, resolution=200)
    ex = extract_file(path)
    assert ex.source == "ocr" and ex.pages == 1
    assert ex.invoice.number == doc.number
