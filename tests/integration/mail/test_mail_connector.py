"""MailConnector through Spojka's sync engine, against real Dovecot and aiosmtpd servers."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from spojka.connectors import registry
from spojka.connectors.mail.connector import MailConnector, default_mapping
from spojka.core.db import make_engine, upgrade
from spojka.localsystems.mail import LocalMailServer
from spojka.sync import service
from spojka.sync.engine import SyncEngine

pytestmark = pytest.mark.mail

MAILBOX = "faktury@pekarna-zilina.sk"
PASSWORD = "Heslo-Faktury-2026"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


@pytest.fixture(scope="module", autouse=True)
def _mailbox(mail_server: LocalMailServer) -> None:
    mail_server.add_mailbox(MAILBOX, PASSWORD)


def _config(server: LocalMailServer, tmp_path: Path) -> dict[str, Any]:
    return {
        "imap_host": server.host,
        "imap_port": server.imap_port,
        "imap_user": MAILBOX,
        "imap_password": PASSWORD,
        "smtp_host": server.host,
        "smtp_port": server.smtp_port,
        "sender": "spojka@pekarna-zilina.sk",
        "sender_name": "Spojka",
        "sent_log": str(tmp_path / "sent.sqlite3"),
        "default_to": [MAILBOX],
    }


def _invoice(number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Mlyn Šaľa <fakturacia@mlyn-sala.sk>"
    msg["To"] = MAILBOX
    msg["Subject"] = f"Faktúra {number} za múku – splatnosť 14 dní"
    msg["Date"] = "Mon, 23 Nov 2026 10:15:00 +0100"
    msg["Message-ID"] = f"<fa-{number}@mlyn-sala.sk>"
    msg.set_content("Dobrý deň, posielame faktúru. S pozdravom, Mlyn Šaľa")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename=f"FA-{number}.pdf")
    return msg.as_bytes()


@pytest.fixture
def sync(mail_server: LocalMailServer, tmp_path: Path) -> Iterator[SyncEngine]:
    url = f"sqlite:///{tmp_path / 'spojka.sqlite'}"
    upgrade(url)
    db = make_engine(url)
    service.save_connection(
        db=db,
        name="posta",
        kind="mail",
        config=_config(mail_server, tmp_path),
        mapping_yaml=default_mapping(),
    )
    engine = SyncEngine(db)
    try:
        yield engine
    finally:
        engine.close()
        db.dispose()


def test_each_mail_becomes_one_activity_and_rereading_adds_nothing(
    mail_server: LocalMailServer, sync: SyncEngine
) -> None:
    for number in (1, 2, 3):
        mail_server.append(MAILBOX, _invoice(number))
    first = sync.poll("posta")
    assert sum(r.records for r in first) == 3
    activity = service.find_record(
        db=sync.db, system="posta", entity="Activity", external_id="<fa-2@mlyn-sala.sk>"
    )["data"]
    assert activity["kind"] == "email"
    assert activity["subject"] == "Faktúra 2 za múku – splatnosť 14 dní"
    assert "Mlyn Šaľa" in activity["body"]
    attachment = activity["extra"]["attachments"][0]
    assert (attachment["filename"], attachment["size"]) == ("FA-2.pdf", len(PDF))

    assert sum(r.records for r in sync.poll("posta")) == 0  # the checkpoint holds
    mail_server.append(MAILBOX, _invoice(4))
    assert sum(r.records for r in sync.poll("posta")) == 1


def test_attachment_bytes_come_back_intact(mail_server: LocalMailServer, tmp_path: Path) -> None:
    connector = registry.create("mail", _config(mail_server, tmp_path))
    assert isinstance(connector, MailConnector)
    mail_server.append(MAILBOX, _invoice(77))
    records = [
        r
        for r in connector.read_page(
            connector.stream("messages"), since=None, page_token=None
        ).records
        if r["message_id"] == "<fa-77@mlyn-sala.sk>"
    ]
    files = connector.attachments(records[0]["checkpoint"])
    assert [(a.filename, a.data) for a in files] == [("FA-77.pdf", PDF)]
    assert "IMAP login accepted" in connector.health().detail


def test_a_notification_is_sent_once_per_idempotency_key(
    mail_server: LocalMailServer, tmp_path: Path
) -> None:
    connector = MailConnector(_config(mail_server, tmp_path))
    stream = connector.stream("notifications")
    before = len(mail_server.caught)
    record = {"subject": "Obchod vyhraný: Pece pre Žilinu", "body": "Projekt je pripravený."}
    first = connector.write(stream, record, external_id=None, idempotency_key="deal-won:1")
    again = connector.write(stream, record, external_id=None, idempotency_key="deal-won:1")
    other = connector.write(stream, record, external_id=None, idempotency_key="deal-won:2")
    assert first.created and not again.created and other.created
    assert again.external_id == first.external_id != other.external_id
    assert len(mail_server.caught) == before + 2
