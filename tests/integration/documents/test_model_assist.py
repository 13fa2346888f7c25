"""A language model asked for the fields the rules left empty: its answers are validated like
any other value, a wrong one is rejected, the cost is counted. The model is a small local
server speaking the OpenAI chat-completions shape (the model is not what Spojka integrates)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.documents import intake_flow, model_assist, service
from tests.integration.documents.conftest import FakeModel


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Spojka]:
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'spojka.sqlite'}"
    )
    yield bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    reset()


def stored_with_blanks(app: Spojka, tmp_path: Path, docgen: ModuleType) -> tuple[int, Any]:
    """A text PDF stored, then its variable symbol and IBAN blanked as if the rules missed them."""
    doc = docgen.make_doc(random.Random(31), "cs")
    path = tmp_path / "faktura.pdf"
    path.write_bytes(docgen.render_pdf(doc, "classic", random.Random(2)))
    with transaction(app.sessions) as session:
        added = service.add_document(session=session, data_dir=app.settings.data_dir, path=path)
        doc_id = added.document.id
        invoice = service.invoice_from_output(dict(service.versions(
            session=session, document_id=doc_id)[-1].invoice))  # fmt: skip
        invoice.variable_symbol = None
        invoice.iban = None
        invoice.fields.pop("variable_symbol", None)
        invoice.fields.pop("iban", None)
        service.save_version(
            session=session, document_id=doc_id, invoice=invoice, actor="test", reason="blanks"
        )
    return doc_id, doc


def test_model_fills_an_empty_field_and_a_wrong_answer_is_rejected(
    app: Spojka,
    tmp_path: Path,
    docgen: ModuleType,
    fake_model: FakeModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc_id, doc = stored_with_blanks(app, tmp_path, docgen)
    assert doc.vs
    # The model knows the variable symbol, but its IBAN fails the checksum.
    fake_model.content = "```json\n" + json.dumps(
        {"variable_symbol": doc.vs, "iban": "CZ6508000000192000145398", "number": None}
    ) + "\n```"  # fmt: skip
    monkeypatch.setenv("SPOJKA_TEST_MODEL_KEY", "sk-local-test")
    endpoint = model_assist.ModelEndpoint.from_mapping(
        {
            "url": fake_model.url,
            "model": "local-small",
            "api_key": "env:SPOJKA_TEST_MODEL_KEY",
            "price_per_1k_prompt": 0.5,
            "price_per_1k_completion": 2.0,
        }
    )
    result = model_assist.assist_document(app, document_id=doc_id, endpoint=endpoint)

    assert {"variable_symbol", "iban"} <= set(result.asked)
    assert result.accepted == {"variable_symbol": doc.vs}
    (rejected,) = result.rejected
    assert rejected["field"] == "iban" and "InvalidIban" in rejected["reason"]
    assert result.cost == pytest.approx((1200 * 0.5 + 40 * 2.0) / 1000)
    # Only the unsure fields were asked, with the document's text, under the configured key.
    (request,) = fake_model.requests
    assert request["path"] == "/v1/chat/completions" and request["model"] == "local-small"
    assert request["headers"]["Authorization"] == "Bearer sk-local-test"
    assert "variable_symbol" in request["messages"][1]["content"]
    assert doc.number in request["messages"][1]["content"]  # the document text went along
    with app.sessions() as session:
        latest = service.versions(session=session, document_id=doc_id)[-1]
    assert latest.actor == "model" and result.version == latest.version
    assert latest.invoice["variable_symbol"] == doc.vs
    assert latest.invoice["fields"]["variable_symbol"]["source"] == "model"
    assert latest.invoice["iban"] is None  # the rejected value was not kept


def test_a_model_answer_that_is_not_json_changes_nothing(
    app: Spojka, tmp_path: Path, docgen: ModuleType, fake_model: FakeModel
) -> None:
    doc_id, _ = stored_with_blanks(app, tmp_path, docgen)
    fake_model.content = "Sorry, I cannot read this invoice."
    endpoint = model_assist.ModelEndpoint(url=fake_model.url, model="local-small")
    result = model_assist.assist_document(app, document_id=doc_id, endpoint=endpoint)
    assert result.error == "the model's answer is not a JSON object"
    assert result.accepted == {} and result.version is None
    with app.sessions() as session:
        assert service.versions(session=session, document_id=doc_id)[-1].actor == "test"


def test_without_a_model_configured_nothing_is_asked(app: Spojka) -> None:
    assert intake_flow.load_config(app.settings.data_dir).model is None
    (app.settings.data_dir / intake_flow.CONFIG_FILE).write_text(
        "model: {url: ftp://example, model: x}\n", encoding="utf-8"
    )
    with pytest.raises(Exception, match="model: url must be http"):
        intake_flow.load_config(app.settings.data_dir)
