# ruff: noqa: F811  - `ap` is the module fixture imported from test_ap_flow
"""The exception worklist, reminders and escalation of ``documents.ap_intake`` against a real
Tryton (and a real SMTP/IMAP server for the reminder mail)."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from spojka.api.app import create_app
from spojka.cli.main import app as cli
from spojka.core.db import transaction
from spojka.documents import intake_flow, worklist
from spojka.documents.reader import extract_file
from spojka.governance import audit, tokens
from spojka.governance.models import Role
from spojka.localsystems.mail import LocalMailServer
from spojka.runtime import engine
from spojka.runtime.flows import signal_decision
from spojka.runtime.models import FlowRun
from spojka.sync import service as sync_service
from tests.integration.documents.conftest import FakeModel
from tests.integration.documents.test_ap_flow import (  # noqa: F401
    Ap,
    add_and_start,
    ap,
    isdoc_file,
    pending,
    run_outcome,
    supplier_invoices,
    supplier_with_order,
)
from tests.integration.flows.helpers import wait_until

pytestmark = pytest.mark.tryton


@pytest.fixture
def api(ap: Ap) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    plain: dict[Role, str] = {}
    with transaction(ap.app.sessions) as session:
        for role in (Role.viewer, Role.integrator, Role.approver):
            _, plain[role] = tokens.create(
                session, name=f"{role.value}-{len(tokens.list_tokens(session))}", role=role
            )
    with TestClient(create_app(ap.app)) as client:
        yield client, plain


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _cli_env(ap: Ap) -> dict[str, str]:
    return {
        "SPOJKA_DATA_DIR": str(ap.app.settings.data_dir),
        "SPOJKA_DATABASE_URL": ap.app.settings.resolved_database_url,
    }


def test_a_person_corrects_and_releases_an_exception_and_the_correction_is_posted(
    ap: Ap, docgen: ModuleType, api: tuple[TestClient, dict[Role, str]]
) -> None:
    client, plain = api
    lines = [("Konzultace", 2, "1500.00")]
    supplier, _, po_number = supplier_with_order(ap, docgen, 77, lines)
    path, _ = isdoc_file(ap, docgen, supplier, "FP2026-0707", lines)
    # The supplier typed the due date a month before the issue date.
    today = dt.date.today()
    wrong_due = today - dt.timedelta(days=30)
    path.write_bytes(
        path.read_bytes().replace(
            (today + dt.timedelta(days=14)).isoformat().encode(), wrong_due.isoformat().encode()
        )
    )
    added = client.post(
        f"/api/v1/documents?filename={path.name}",
        content=path.read_bytes(),
        headers=_auth(plain[Role.integrator]),
    )
    assert added.status_code == 201, added.text
    doc_id, workflow_id = added.json()["id"], added.json()["workflow_id"]
    wait_until("the exception", lambda: pending(ap, workflow_id))

    viewer = _auth(plain[Role.viewer])
    (item,) = [
        i
        for i in client.get("/api/v1/documents/exceptions", headers=viewer).json()
        if i["document_id"] == doc_id
    ]
    assert item["number"] == "FP2026-0707" and item["decision_id"]
    assert [c["check"] for c in item["failed_checks"]] == ["DueBeforeIssue"]
    shown = client.get(f"/api/v1/documents/{doc_id}", headers=viewer).json()
    due = next(f for f in shown["fields"] if f["field"] == "due_date")
    assert due["value"] == wrong_due.isoformat() and due["source"] == "xml"
    assert shown["exception"]["decision_id"] == item["decision_id"]

    # The CLI shows the same document and its failed check.
    runner = CliRunner()
    listed = runner.invoke(cli, ["documents", "exceptions"], env=_cli_env(ap))
    assert listed.exit_code == 0, listed.output
    assert "FP2026-0707" in listed.stdout and "DueBeforeIssue" in listed.stdout
    card = runner.invoke(cli, ["documents", "show", str(doc_id)], env=_cli_env(ap))
    assert card.exit_code == 0, card.output
    assert "due_date" in card.stdout and "DueBeforeIssue" in card.stdout
    assert "waiting as an exception" in card.stdout

    # Correct (an operator) and release (an approver; a viewer may not).
    fixed = client.post(
        f"/api/v1/documents/{doc_id}/corrections",
        json={"fields": {"due_date": (today + dt.timedelta(days=14)).isoformat()},
              "reason": "splatnost dle smlouvy 14 dní"},
        headers=_auth(plain[Role.integrator]),
    )  # fmt: skip
    assert fixed.status_code == 200, fixed.text
    assert client.get(f"/api/v1/documents/{doc_id}", headers=viewer).json()["failed_checks"] == []
    denied = client.post(f"/api/v1/documents/{doc_id}/release", json={}, headers=viewer)
    assert denied.status_code == 403
    released = client.post(
        f"/api/v1/documents/{doc_id}/release",
        json={"reason": "datum splatnosti opraveno", "minutes_spent": 2},
        headers=_auth(plain[Role.approver]),
    )
    assert released.status_code == 200, released.text

    result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
    assert result["outcome"] == "approved", result
    assert result["version"] == 2 and result["failed_checks_after_release"] == []
    assert result["order"] == po_number
    (invoice,) = supplier_invoices(ap, "FP2026-0707")
    assert invoice["state"] == "posted"
    again = client.post(
        f"/api/v1/documents/{doc_id}/release", json={}, headers=_auth(plain[Role.approver])
    )
    assert again.status_code == 409


def _subject(raw: bytes) -> str:
    return str(make_header(decode_header(message_from_bytes(raw)["Subject"])))


@pytest.mark.mail
def test_an_unanswered_exception_is_reminded_then_escalated_to_finance(
    ap: Ap, docgen: ModuleType
) -> None:
    supplier, _, _ = supplier_with_order(ap, docgen, 88, [("Konzultace", 10, "1500.00")])
    path, _ = isdoc_file(ap, docgen, supplier, "FP2026-0808", [("Konzultace", 10, "1650.00")])
    config = ap.app.settings.data_dir / intake_flow.CONFIG_FILE
    with LocalMailServer() as mail:
        petra = mail.add_mailbox("petra@firma.test", "heslo-petra")
        finance = mail.add_mailbox("uctarna@firma.test", "heslo-uctarna")
        sync_service.save_connection(
            db=ap.app.engine,
            name="ap-mail",
            kind="mail",
            config={
                "smtp_host": mail.host,
                "smtp_port": mail.smtp_port,
                "sender": "spojka@firma.test",
                "sent_log": str(ap.tmp / "ap-sent.sqlite3"),
            },
        )
        config.write_text(
            "reminders:\n"
            "  connection: ap-mail\n"
            "  remind_after: 1\n"
            "  escalate_after: 2\n"
            f"  recipients: {{approver: [{petra.address}], finance: [{finance.address}]}}\n",
            encoding="utf-8",
        )
        try:
            runner = CliRunner()
            added = runner.invoke(cli, ["documents", "add", str(path)], env=_cli_env(ap))
            assert added.exit_code == 0, added.output
            workflow_id = intake_flow.workflow_id(added.stdout.split("run ap:")[1].split()[0])
            request = wait_until("the exception", lambda: pending(ap, workflow_id))

            def mailed(to: str, prefix: str) -> Any:
                return next(
                    (
                        m
                        for m in mail.caught
                        if to in m.rcpt_tos and _subject(m.raw).startswith(prefix)
                    ),
                    None,
                )

            reminder = wait_until("the reminder", lambda: mailed(petra.address, "Připomínka"))
            assert "FP2026-0808" in _subject(reminder.raw)
            assert f"spojka decisions approve {request.id}" in reminder.raw.decode()
            wait_until("the escalation", lambda: mailed(finance.address, "Eskalace"))
            escalated = wait_until(
                "the decision handed to finance",
                lambda: (
                    (d := pending(ap, workflow_id)) is not None
                    and d.required_role == "finance"
                    and d
                ),
            )
            assert escalated.id == request.id
            with ap.app.sessions() as session:
                actions = {
                    e.action: e
                    for e in audit.list_entries(
                        session, object_type="decision_request", object_id=str(request.id)
                    )
                }
            assert actions["decision.reminded"].after["mailed_to"] == [petra.address]
            assert actions["decision.escalated"].after["required_role"] == "finance"
            assert actions["decision.escalated"].before == {"required_role": "approver"}

            with ap.app.sessions() as session:
                doc_id = next(
                    i.document_id
                    for i in worklist.list_exceptions(session)
                    if i.number == "FP2026-0808"
                )
            released = runner.invoke(
                cli,
                ["documents", "release", str(doc_id), "--actor", "karel", "--role", "finance",
                 "--reason", "cena dohodnuta telefonicky"],
                env=_cli_env(ap),
            )  # fmt: skip
            assert released.exit_code == 0, released.output
            result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
            assert result["outcome"] == "approved" and result["released_by"] == "karel"
            assert len(supplier_invoices(ap, "FP2026-0808")) == 1
        finally:
            config.unlink(missing_ok=True)


def test_documents_ap_yaml_rejects_a_reminder_policy_that_escalates_before_it_reminds(
    tmp_path: Path,
) -> None:
    (tmp_path / intake_flow.CONFIG_FILE).write_text(
        "reminders: {remind_after: 60, escalate_after: 30}\n", encoding="utf-8"
    )
    with pytest.raises(Exception, match="escalate_after must be later than remind_after"):
        intake_flow.load_config(tmp_path)


@pytest.mark.mail
def test_mail_intake_command_reads_a_mail_connection_and_starts_the_runs(
    ap: Ap, docgen: ModuleType
) -> None:
    lines = [("Licence Spojka (roční)", 1, "9000.00")]
    supplier, _, _ = supplier_with_order(ap, docgen, 99, lines)
    path, _ = isdoc_file(ap, docgen, supplier, "FP2026-0909", lines)
    with LocalMailServer() as mail:
        box = mail.add_mailbox("faktury@firma.test", "heslo-faktury")
        sync_service.save_connection(
            db=ap.app.engine,
            name="faktury",
            kind="mail",
            config={
                "imap_host": mail.host,
                "imap_port": mail.imap_port,
                "imap_user": box.address,
                "imap_password": box.password,
            },
        )
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "fakturace@dodavatel.test", box.address, "Faktura"
        msg.set_content("V příloze faktura.")
        msg.add_attachment(
            path.read_bytes(), maintype="application", subtype="xml", filename=path.name
        )
        mail.append(box.address, msg.as_bytes())
        runner = CliRunner()
        env = _cli_env(ap)
        taken = runner.invoke(cli, ["documents", "mail-intake", "--connection", "faktury"], env=env)
        assert taken.exit_code == 0, taken.output
        assert f"+ {path.name}: document" in taken.stdout
        assert "1 invoice(s) taken in" in taken.stdout
        workflow_id = "ap:" + taken.stdout.split("run ap:")[1].split(")")[0]
        result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
        assert result["outcome"] == "automated", result
        assert len(supplier_invoices(ap, "FP2026-0909")) == 1
        again = runner.invoke(cli, ["documents", "mail-intake", "--connection", "faktury"], env=env)
        assert again.exit_code == 0 and "0 message(s), 0 invoice(s)" in again.stdout
        wrong = runner.invoke(cli, ["documents", "mail-intake", "--connection", "nic"], env=env)
        assert wrong.exit_code == 1


def pdf_file(ap: Ap, docgen: ModuleType, supplier: Any, number: str, lines: list[Any]) -> Path:
    """The invoice of ``isdoc_file`` printed as a text PDF instead."""
    xml_path, _ = isdoc_file(ap, docgen, supplier, number, lines)
    rng = random.Random(number)
    customer = docgen.company(rng, "CZ")
    today = dt.date.today()
    doc = docgen.Doc(
        "cs", supplier, customer, number, today, today, today + dt.timedelta(days=14), "CZK",
        "".join(ch for ch in number if ch.isdigit())[-10:], docgen._iban(rng, "CZ"),
    )  # fmt: skip
    extracted = extract_file(xml_path).invoice
    doc.lines = [ln.model_dump() for ln in extracted.lines]
    doc.breakdown = [b.model_dump() for b in extracted.vat_breakdown]
    doc.total_without, doc.total_vat = extracted.total_without_vat, extracted.total_vat
    doc.total_with = doc.amount_due = extracted.total_with_vat
    path = xml_path.with_suffix(".pdf")
    path.write_bytes(docgen.render_pdf(doc, "classic", random.Random(3)))
    return path


def test_with_a_model_configured_its_cost_is_counted_into_the_run_record(
    ap: Ap, docgen: ModuleType, fake_model: FakeModel
) -> None:
    lines = [("Konzultace", 3, "1500.00")]
    supplier, _, _ = supplier_with_order(ap, docgen, 111, lines)
    path = pdf_file(ap, docgen, supplier, "FP2026-1111", lines)
    config = ap.app.settings.data_dir / intake_flow.CONFIG_FILE
    config.write_text(
        f"model: {{url: '{fake_model.url}', model: local-small, min_confidence: 1.0,\n"
        "        price_per_1k_prompt: 1.0, price_per_1k_completion: 1.0}\n",
        encoding="utf-8",
    )
    fake_model.content = json.dumps({"iban": "CZ6508000000192000145398"})  # fails its checksum
    try:
        workflow_id, _ = add_and_start(ap, path)

        def finished_or_waiting() -> Any:
            request = pending(ap, workflow_id)
            if request is not None:
                signal_decision(decision_id=request.id, decision="reject", actor="petra",
                                role="approver", reason="test: only the cost matters")  # fmt: skip
            return run_outcome(ap, workflow_id) in ("automated", "approved", "rejected")

        wait_until("the run to finish", finished_or_waiting)
    finally:
        config.unlink(missing_ok=True)
    assert fake_model.requests, "the model was not asked"
    with ap.app.sessions() as session:
        run = session.get(FlowRun, workflow_id)
        assert run is not None and run.detail is not None
        assert run.model_cost == pytest.approx((1200 + 40) / 1000)
        asked = run.detail["model"]
        assert asked["asked"] and asked["accepted"] == {}
        assert asked["rejected"][0]["field"] == "iban"
