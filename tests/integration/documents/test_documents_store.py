"""Storing documents once, duplicates, corrected versions and learning, on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType

import pytest

from spojka.core.db import make_engine, session_factory, transaction, upgrade
from spojka.documents import service
from spojka.documents.models import StoredDocument


@pytest.fixture
def sessions(db_url: str):  # type: ignore[no-untyped-def]
    upgrade(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def _pdf(docgen: ModuleType, doc, folder: Path, name: str, seed: int) -> Path:  # type: ignore[no-untyped-def]
    path = folder / name
    path.write_bytes(docgen.render_pdf(doc, "classic", random.Random(seed)))
    return path


def test_same_file_is_stored_once_and_same_invoice_is_a_duplicate(
    sessions, docgen: ModuleType, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    doc = docgen.make_doc(random.Random(1), "cs")
    first = _pdf(docgen, doc, tmp_path, "a.pdf", 1)
    again = tmp_path / "a-copy.pdf"
    again.write_bytes(first.read_bytes())
    other_file = _pdf(docgen, doc, tmp_path, "b.pdf", 2)  # same invoice, other bytes
    data = tmp_path / "data"
    with transaction(sessions) as s:
        r1 = service.add_document(session=s, data_dir=data, path=first)
    with transaction(sessions) as s:
        r2 = service.add_document(session=s, data_dir=data, path=again)
    with transaction(sessions) as s:
        r3 = service.add_document(session=s, data_dir=data, path=other_file)
    assert r1.new_file and not r2.new_file and r2.document.id == r1.document.id
    assert r3.new_file and r3.duplicate_of is not None and r3.duplicate_of.id == r1.document.id
    assert "DuplicateInvoice" in {type(f).__name__ for f in r3.failures}
    with sessions() as s:
        assert s.query(StoredDocument).count() == 2
    stored = list((data / "documents").rglob("*.pdf"))
    assert len(stored) == 2


def test_a_correction_is_kept_as_a_version_and_taught_for_the_next_invoice(
    sessions, docgen: ModuleType, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """This supplier prints the variable symbol as 'Párovací znak', which the rules do not
    know. After one correction the next invoice of the supplier is read right."""
    rng = random.Random(77)
    words = {**docgen.WORDS["cs"], "vs": ["Párovací znak"]}
    doc1 = docgen.make_doc(rng, "cs")
    doc1.words = words
    doc2 = docgen.make_doc(rng, "cs")
    doc2.supplier, doc2.words = doc1.supplier, words
    data = tmp_path / "data"
    with transaction(sessions) as s:
        r1 = service.add_document(
            session=s, data_dir=data, path=_pdf(docgen, doc1, tmp_path, "1.pdf", 3)
        )
        assert r1.extraction is not None and r1.extraction.invoice.variable_symbol is None
        doc_id = r1.document.id
    with transaction(sessions) as s:
        version, hints = service.correct_document(
            session=s,
            document_id=doc_id,
            corrections={"variable_symbol": doc1.vs},
            actor="jana",
            reason="VS printed as párovací znak",
        )
        assert version.version == 2
        assert [(h.field, h.kind, h.value, h.version) for h in hints] == [
            ("variable_symbol", "label", "parovaci znak", 1)
        ]
    with sessions() as s:
        kept = service.versions(session=s, document_id=doc_id)
        assert [v.version for v in kept] == [1, 2]
        assert kept[0].invoice["variable_symbol"] is None
        assert kept[1].invoice["variable_symbol"] == doc1.vs
        assert kept[1].invoice["fields"]["variable_symbol"]["source"] == "person"
    with transaction(sessions) as s:
        r2 = service.add_document(
            session=s, data_dir=data, path=_pdf(docgen, doc2, tmp_path, "2.pdf", 4)
        )
    assert r2.extraction is not None
    assert r2.extraction.invoice.variable_symbol == doc2.vs
    assert r2.extraction.invoice.fields["variable_symbol"].hint_version == 1


def test_a_constant_supplier_field_is_remembered_as_a_value(
    sessions, docgen: ModuleType, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    doc1 = docgen.make_doc(rng, "cs")
    doc2 = docgen.make_doc(rng, "cs")
    doc2.supplier = doc1.supplier
    data = tmp_path / "data"
    with transaction(sessions) as s:
        r1 = service.add_document(
            session=s, data_dir=data, path=_pdf(docgen, doc1, tmp_path, "1.pdf", 1)
        )
        doc_id = r1.document.id
    with transaction(sessions) as s:
        service.correct_document(
            session=s,
            document_id=doc_id,
            corrections={"supplier.name": "Dřevo Příbram, s.r.o. (závod Dobříš)"},
            actor="jana",
        )
    with transaction(sessions) as s:
        r2 = service.add_document(
            session=s, data_dir=data, path=_pdf(docgen, doc2, tmp_path, "2.pdf", 2)
        )
    assert r2.extraction is not None
    assert r2.extraction.invoice.supplier.name == "Dřevo Příbram, s.r.o. (závod Dobříš)"
    assert r2.extraction.invoice.fields["supplier.name"].source == "person"
