"""The documents API: intake by upload, duplicates, versions and corrections, role guards."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from spojka.api.app import create_app
from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.governance import tokens
from spojka.governance.models import Role


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=db_url, max_body_bytes=8_000_000
    )
    instance: Spojka = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    plain: dict[Role, str] = {}
    with transaction(instance.sessions) as session:
        for role in Role:
            _, plain[role] = tokens.create(session, name=f"t-{role.value}", role=role)
    app = create_app(instance)
    with TestClient(app) as client:
        yield client, plain
    reset()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_upload_store_once_duplicates_and_correct(api, docgen: ModuleType) -> None:  # type: ignore[no-untyped-def]
    client, plain = api
    doc = docgen.make_doc(random.Random(12), "cs")
    pdf = docgen.render_pdf(doc, "classic", random.Random(1))
    xml = docgen.isdoc_xml(doc)
    operator = _auth(plain[Role.integrator])

    denied = client.post(
        "/api/v1/documents?filename=f.pdf", content=pdf, headers=_auth(plain[Role.viewer])
    )
    assert denied.status_code == 403

    first = client.post("/api/v1/documents?filename=faktura.pdf", content=pdf, headers=operator)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["new_file"] and body["read_path"] == "text"
    assert body["invoice"]["number"] == doc.number and body["invoice"]["file"] == "faktura.pdf"

    same = client.post("/api/v1/documents?filename=again.pdf", content=pdf, headers=operator)
    assert same.json()["new_file"] is False and same.json()["id"] == body["id"]

    as_xml = client.post("/api/v1/documents?filename=f.isdoc", content=xml, headers=operator)
    assert as_xml.json()["duplicate_of"] == body["id"]
    assert "DuplicateInvoice" in {f["check"] for f in as_xml.json()["failures"]}

    fixed = client.post(
        f"/api/v1/documents/{body['id']}/corrections",
        json={"fields": {"currency": "EUR"}, "reason": "paid in euro"},
        headers=operator,
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["version"] == 2
    shown = client.get(f"/api/v1/documents/{body['id']}", headers=_auth(plain[Role.viewer]))
    assert shown.json()["invoice"]["currency"] == "EUR"
    assert [v["version"] for v in shown.json()["versions"]] == [1, 2]
    assert shown.json()["versions"][1]["actor"] == "t-integrator"


def test_extract_without_storing_and_a_clear_error(api, docgen: ModuleType) -> None:  # type: ignore[no-untyped-def]
    client, plain = api
    doc = docgen.make_doc(random.Random(13), "en")
    reader = _auth(plain[Role.viewer])
    ok = client.post(
        "/api/v1/documents/extract?filename=x.xml", content=docgen.ubl_xml(doc), headers=reader
    )
    assert ok.status_code == 200 and ok.json()["number"] == doc.number
    bad = client.post(
        "/api/v1/documents/extract?filename=x.pdf", content=b"not a pdf", headers=reader
    )
    assert bad.status_code == 400
    assert "not a PDF" in bad.text


def test_intake_starts_the_run_and_the_worklist_guards_release(api, docgen: ModuleType) -> None:  # type: ignore[no-untyped-def]
    client, plain = api
    doc = docgen.make_doc(random.Random(14), "cs")
    operator = _auth(plain[Role.integrator])
    added = client.post(
        "/api/v1/documents?filename=f.isdoc", content=docgen.isdoc_xml(doc), headers=operator
    )
    assert added.status_code == 201, added.text
    assert added.json()["workflow_id"].startswith("ap:")
    stored_only = client.post(
        "/api/v1/documents?filename=g.xml&flow=false", content=docgen.ubl_xml(
            docgen.make_doc(random.Random(15), "en")), headers=operator,
    )  # fmt: skip
    assert stored_only.status_code == 201 and stored_only.json()["workflow_id"] is None

    # No worker runs here: nothing waits yet, so there is nothing to release.
    listed = client.get("/api/v1/documents/exceptions", headers=_auth(plain[Role.viewer]))
    assert listed.status_code == 200 and listed.json() == []
    doc_id = added.json()["id"]
    viewer = client.post(
        f"/api/v1/documents/{doc_id}/release", json={}, headers=_auth(plain[Role.viewer])
    )
    assert viewer.status_code == 403
    not_waiting = client.post(
        f"/api/v1/documents/{doc_id}/release", json={}, headers=_auth(plain[Role.approver])
    )
    assert not_waiting.status_code == 409
    assert "not waiting as an exception" in not_waiting.json()["detail"]
    shown = client.get(f"/api/v1/documents/{doc_id}", headers=_auth(plain[Role.viewer])).json()
    number = next(f for f in shown["fields"] if f["field"] == "number")
    assert number == {
        "field": "number", "value": doc.number, "source": "xml", "confidence": 1.0, "page": None
    }  # fmt: skip
    assert shown["failed_checks"] == [] and shown["exception"] is None
