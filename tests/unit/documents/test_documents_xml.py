"""Structured e-invoices are read exactly: every field the XML states, nothing it does not."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import pytest

from spojka.documents.reader import UnreadableDocument, extract_file


def _expected(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".expected.json").read_text())


def _xml_docs(corpus: list[Path]) -> list[Path]:
    return [p for p in corpus if _expected(p)["_meta"]["kind"] in ("isdoc", "ubl", "facturx")]


def test_every_field_of_isdoc_ubl_and_facturx_is_read(
    dev_corpus: list[Path], heldout_corpus: list[Path], score: ModuleType
) -> None:
    docs = _xml_docs(dev_corpus) + _xml_docs(heldout_corpus)
    assert {_expected(p)["_meta"]["kind"] for p in docs} == {"isdoc", "ubl", "facturx"}
    for path in docs:
        out = extract_file(path).to_output()
        assert out["source"] == "xml"
        wrong = [k for k, ok in score.compare(out, _expected(path)).items() if not ok]
        assert wrong == [], f"{path.name}: {wrong}"


def test_isdoc_5_and_6_namespaces_both_read(docgen: ModuleType, tmp_path: Path) -> None:
    doc = docgen.make_doc(random.Random(5), "cs")
    for version5 in (False, True):
        path = tmp_path / f"v{int(version5)}.isdoc"
        path.write_bytes(docgen.isdoc_xml(doc, version5=version5))
        ex = extract_file(path)
        assert (ex.format, ex.invoice.number) == ("isdoc", doc.number)


def test_facturx_pdf_is_read_from_its_embedded_xml_not_its_text(
    docgen: ModuleType, tmp_path: Path
) -> None:
    doc = docgen.make_doc(random.Random(11), "en")
    path = tmp_path / "fx.pdf"
    path.write_bytes(docgen.facturx_pdf(doc, random.Random(1)))
    ex = extract_file(path)
    assert ex.source == "xml" and ex.format == "cii"
    assert all(info.source in ("xml", "rule") for info in ex.invoice.fields.values())
    assert ex.invoice.fields["number"].confidence == 1.0


def test_a_field_the_xml_does_not_state_stays_null(docgen: ModuleType, tmp_path: Path) -> None:
    doc = docgen.make_doc(random.Random(3), "en")
    doc.vs = None
    path = tmp_path / "no-vs.xml"
    path.write_bytes(docgen.ubl_xml(doc))
    out = extract_file(path).to_output()
    assert out["variable_symbol"] is None
    assert "variable_symbol" not in out["fields"]


def test_foreign_xml_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "order.xml"
    path.write_text('<Order xmlns="urn:example:order"><ID>1</ID></Order>')
    with pytest.raises(UnreadableDocument, match="not ISDOC, CII or UBL"):
        extract_file(path)


def test_isdocx_archive_is_read(docgen: ModuleType, tmp_path: Path) -> None:
    import zipfile

    doc = docgen.make_doc(random.Random(9), "cs")
    path = tmp_path / "invoice.isdocx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.xml", "<manifest/>")
        archive.writestr("invoice.isdoc", docgen.isdoc_xml(doc))
    ex = extract_file(path)
    assert (ex.source, ex.format, ex.invoice.number) == ("xml", "isdoc", doc.number)
