"""``documents.ap_intake`` against a real Tryton: a supplier invoice (ISDOC) matched to the
purchase order, approved by the matrix and posted once as a Tryton supplier invoice."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spojka.bootstrap import Spojka, bootstrap, reset
from spojka.connectors.mail.imap import ImapReader
from spojka.connectors.tryton.client import TrytonClient
from spojka.core.db import transaction
from spojka.core.settings import load_settings
from spojka.documents import intake_flow, mail_intake, service
from spojka.documents.intake import take_in
from spojka.documents.posting import OPEN_PURCHASE_STATES, create_supplier_with_order
from spojka.flows import local, systems
from spojka.localsystems import tryton
from spojka.localsystems.mail import LocalMailServer
from spojka.runtime import engine, runs
from spojka.runtime.flows import signal_decision
from spojka.runtime.models import FlowRun
from tests.integration.flows.helpers import wait_until

pytestmark = pytest.mark.tryton


@dataclass
class Ap:
    app: Spojka
    erp: TrytonClient
    tmp: Path


@pytest.fixture(scope="module")
def ap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ap]:
    tmp = tmp_path_factory.mktemp("ap")
    server = tryton.start()
    settings = load_settings(
        data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'spojka.sqlite'}"
    )
    app = bootstrap(settings, migrate=True, create_key=True, configure_logs=False)
    client = TrytonClient(server.url, server.database, server.user, server.password)
    try:
        local.configure_tryton(app, server)
        engine.launch(settings)
        yield Ap(app, client, tmp)
    finally:
        engine.shutdown()
        systems.reset_clients()
        client.close()
        reset()
        server.stop()


def supplier_with_order(
    ap: Ap, docgen: ModuleType, seed: int, lines: list[tuple[str, int, str]], rate: int = 21
) -> tuple[Any, int, str]:
    """A supplier party (IČO, DIČ) in Tryton with a confirmed purchase of ``lines``."""
    supplier = docgen.company(random.Random(seed), "CZ")
    order = create_supplier_with_order(
        ap.erp,
        name=f"{supplier.name} {seed}",
        ico=supplier.ico,
        dic=supplier.dic,
        street=supplier.street,
        city=supplier.city,
        lines=lines,
        rate=Decimal(rate),
    )
    assert order.state in OPEN_PURCHASE_STATES
    return supplier, order.purchase, order.number


def isdoc_file(
    ap: Ap,
    docgen: ModuleType,
    supplier: Any,
    number: str,
    lines: list[tuple[str, int, str]],
    rate: int = 21,
) -> tuple[Path, Decimal]:
    doc = docgen.invoice_for_order(supplier, number, lines, rate)
    path = ap.tmp / f"{number.replace('/', '-')}.isdoc"
    path.write_bytes(docgen.isdoc_xml(doc))
    return path, doc.total_with


def add_and_start(ap: Ap, path: Path) -> tuple[str, int]:
    taken = take_in(ap.app, path, actor="cli")
    assert taken.workflow_id is not None
    return taken.workflow_id, taken.document_id


def supplier_invoices(ap: Ap, number: str) -> list[dict[str, Any]]:
    return ap.erp.search_read(
        "account.invoice",
        [("type", "=", "in"), ("reference", "=", number)],
        ["state", "total_amount", "lines"],
    )


def pending(ap: Ap, workflow_id: str) -> Any:
    with ap.app.sessions() as session:
        found = [d for d in runs.pending_decisions(session) if d.workflow_id == workflow_id]
        return found[0] if found else None


def run_outcome(ap: Ap, workflow_id: str) -> str | None:
    with ap.app.sessions() as session:
        run = session.get(FlowRun, workflow_id)
        return None if run is None else str(run.outcome)


def test_a_matched_small_invoice_is_posted_once_without_a_person(
    ap: Ap, docgen: ModuleType
) -> None:
    lines = [("Konzultace", 4, "1500.00"), ("Školení uživatelů", 2, "1200.00")]
    supplier, purchase, po_number = supplier_with_order(ap, docgen, 11, lines)
    path, total = isdoc_file(ap, docgen, supplier, "FP2026-0101", lines)
    workflow_id, _ = add_and_start(ap, path)
    result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
    assert result["outcome"] == "automated", result.get("error")
    assert result["match"] == "matched" and result["order"] == po_number
    (invoice,) = supplier_invoices(ap, "FP2026-0101")
    assert invoice["state"] == "posted"
    assert Decimal(str(invoice["total_amount"])) == total == Decimal("10164.00")
    # Linked to the purchase: Tryton lists the invoice on the purchase order.
    (row,) = ap.erp.read("purchase.purchase", [purchase], ["invoices"])
    assert row["invoices"] == [invoice["id"]]

    # The same file again: stored once, the same run, nothing new in Tryton.
    again, _ = add_and_start(ap, path)
    assert again == workflow_id
    # Even a second run of the document (a retried post) finds the invoice it made.
    with transaction(ap.app.sessions) as session:
        doc = session.query(service.StoredDocument).filter_by(content_hash=workflow_id[3:]).one()
        doc_id = doc.id
    retry = engine.enqueue(
        ap.app.settings, intake_flow.FLOW, doc_id, workflow_id=f"{workflow_id}:retry"
    )
    assert (
        engine.wait_result(ap.app.settings, retry, timeout=180)["invoice"]["id"] == (invoice["id"])
    )
    assert len(supplier_invoices(ap, "FP2026-0101")) == 1
    assert run_outcome(ap, workflow_id) == "automated"


def test_a_large_invoice_waits_for_two_approvers_then_posts(ap: Ap, docgen: ModuleType) -> None:
    lines = [("Implementace ERP", 150, "1800.00")]
    supplier, _, _ = supplier_with_order(ap, docgen, 22, lines)
    path, total = isdoc_file(ap, docgen, supplier, "FP2026-0202", lines)
    workflow_id, _ = add_and_start(ap, path)
    first = wait_until("the first approval request", lambda: pending(ap, workflow_id))
    assert first.required_role == "approver"
    assert supplier_invoices(ap, "FP2026-0202") == []  # nothing posted while waiting
    signal_decision(decision_id=first.id, decision="approve", actor="petra", role="approver")
    second = wait_until(
        "the finance approval request",
        lambda: (d := pending(ap, workflow_id)) is not None and d.id != first.id and d,
    )
    assert second.required_role == "finance"
    # Two approvers are two people: the first approver cannot also give the finance approval.
    signal_decision(decision_id=second.id, decision="approve", actor="petra", role="finance")
    third = wait_until(
        "the finance approval asked again",
        lambda: (d := pending(ap, workflow_id)) is not None and d.id != second.id and d,
    )
    assert third.required_role == "finance"
    assert supplier_invoices(ap, "FP2026-0202") == []
    signal_decision(decision_id=third.id, decision="approve", actor="karel", role="finance")
    result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
    assert result["outcome"] == "approved"
    assert result["approvals"] == [
        {"role": "approver", "actor": "petra"},
        {"role": "finance", "actor": "karel"},
    ]
    (invoice,) = supplier_invoices(ap, "FP2026-0202")
    assert Decimal(str(invoice["total_amount"])) == total == Decimal("326700.00")


def test_a_mismatching_invoice_waits_as_an_exception_and_a_rejection_posts_nothing(
    ap: Ap, docgen: ModuleType
) -> None:
    ordered = [("Konzultace", 10, "1500.00")]
    supplier, _, _ = supplier_with_order(ap, docgen, 33, ordered)
    invoiced = [("Konzultace", 10, "1650.00")]  # 10 % over the ordered price
    path, _ = isdoc_file(ap, docgen, supplier, "FP2026-0303", invoiced)
    workflow_id, doc_id = add_and_start(ap, path)
    request = wait_until("the exception", lambda: pending(ap, workflow_id))
    assert request.topic == "ap-exception"
    assert "partial" in request.summary and "unit price 1650" in request.summary
    assert run_outcome(ap, workflow_id) == "waiting"
    with ap.app.sessions() as session:
        assert session.get(service.StoredDocument, doc_id).status == "exception"
    signal_decision(
        decision_id=request.id,
        decision="reject",
        actor="petra",
        role="approver",
        reason="cena neodpovídá objednávce",
    )
    result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
    assert result["outcome"] == "rejected"
    assert supplier_invoices(ap, "FP2026-0303") == []


def test_a_released_exception_counts_as_the_one_approval_and_posts(
    ap: Ap, docgen: ModuleType
) -> None:
    supplier, _, _ = supplier_with_order(ap, docgen, 44, [("Konzultace", 10, "1500.00")])
    invoiced = [("Konzultace", 10, "1650.00")]
    path, total = isdoc_file(ap, docgen, supplier, "FP2026-0404", invoiced)
    workflow_id, _ = add_and_start(ap, path)
    request = wait_until("the exception", lambda: pending(ap, workflow_id))
    signal_decision(
        decision_id=request.id,
        decision="approve",
        actor="petra",
        role="approver",
        reason="cena dohodnuta telefonicky",
        minutes_spent=3,
    )
    result = engine.wait_result(ap.app.settings, workflow_id, timeout=180)
    assert result["outcome"] == "approved"
    assert result["released_by"] == "petra"
    (invoice,) = supplier_invoices(ap, "FP2026-0404")
    assert Decimal(str(invoice["total_amount"])) == total == Decimal("19965.00")
    with ap.app.sessions() as session:
        run = session.get(FlowRun, workflow_id)
        assert run is not None and run.human_seconds == 180


@pytest.mark.mail
def test_an_invoice_mailed_to_the_intake_mailbox_is_posted_once(ap: Ap, docgen: ModuleType) -> None:
    lines = [("Licence Spojka (roční)", 1, "15000.00")]
    supplier, _, _ = supplier_with_order(ap, docgen, 55, lines)
    path, total = isdoc_file(ap, docgen, supplier, "FP2026-0505", lines)
    with LocalMailServer() as mail:
        box = mail.add_mailbox("faktury@spojka.test", "heslo-faktury")

        def message(subject: str) -> bytes:
            msg = EmailMessage()
            msg["From"] = "fakturace@dodavatel.test"
            msg["To"] = box.address
            msg["Subject"] = subject
            msg.set_content("Dobrý den, v příloze zasíláme fakturu.")
            msg.add_attachment(
                path.read_bytes(), maintype="application", subtype="xml", filename=path.name
            )
            msg.add_attachment(b"BEGIN:VCARD\nEND:VCARD\n", maintype="text", subtype="vcard",
                               filename="podpis.vcf")  # fmt: skip
            return msg.as_bytes()

        mail.append(box.address, message("Faktura FP2026-0505"))
        with ImapReader(mail.host, mail.imap_port, box.address, box.password) as reader:
            first = mail_intake.intake(ap.app, reader)
        assert first.messages == 1 and first.skipped == ["podpis.vcf"]
        (item,) = first.items
        assert item.new_file and item.workflow_id
        result = engine.wait_result(ap.app.settings, item.workflow_id, timeout=180)
        assert result["outcome"] == "automated", result.get("error") or result
        (invoice,) = supplier_invoices(ap, "FP2026-0505")
        assert invoice["state"] == "posted"
        assert Decimal(str(invoice["total_amount"])) == total == Decimal("18150.00")

        # Read again: the checkpoint holds, nothing is taken twice.
        with ImapReader(mail.host, mail.imap_port, box.address, box.password) as reader:
            assert mail_intake.intake(ap.app, reader).messages == 0
        # The same invoice mailed again (a reminder): recognised, the same run, no new invoice.
        mail.append(box.address, message("Upomínka: Faktura FP2026-0505"))
        with ImapReader(mail.host, mail.imap_port, box.address, box.password) as reader:
            again = mail_intake.intake(ap.app, reader)
        (repeat,) = again.items
        assert not repeat.new_file and repeat.workflow_id == item.workflow_id
        assert len(supplier_invoices(ap, "FP2026-0505")) == 1


def test_goods_invoiced_before_they_were_received_wait_as_a_three_way_exception(
    ap: Ap, docgen: ModuleType
) -> None:
    lines = [("Odborná kniha: Účetnictví", 5, "450.00")]
    supplier, _, _ = supplier_with_order(ap, docgen, 66, lines, rate=12)
    path, _ = isdoc_file(ap, docgen, supplier, "FP2026-0606", lines, rate=12)
    workflow_id, _ = add_and_start(ap, path)
    request = wait_until("the 3-way exception", lambda: pending(ap, workflow_id))
    assert request.topic == "ap-exception"
    assert "invoiced 5, received 0" in request.summary
    assert supplier_invoices(ap, "FP2026-0606") == []
    signal_decision(
        decision_id=request.id,
        decision="reject",
        actor="petra",
        role="approver",
        reason="zboží zatím nedorazilo",
    )
    assert engine.wait_result(ap.app.settings, workflow_id, timeout=180)["outcome"] == "rejected"
