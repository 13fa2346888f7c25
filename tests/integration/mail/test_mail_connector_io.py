"""IMAP reading with UID checkpoints and SMTP sending at most once, against real servers."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from spojka.connectors.mail.imap import ImapReader, MailCheckpoint
from spojka.connectors.mail.smtp import (
    MailAttachment,
    Notification,
    SentLog,
    SmtpSender,
    notification_message_id,
)
from spojka.core.errors import AuthError, TransientError
from spojka.localsystems.common import free_port
from spojka.localsystems.mail import LocalMailServer

pytestmark = pytest.mark.mail

MAILBOX = "obchod@strojirny-zdar.cz"
PASSWORD = "Heslo-Obchod-2026"

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def _invoice_mail(number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Účtárna Košice <uctaren@kosice-stavby.sk>"
    msg["To"] = MAILBOX
    msg["Subject"] = f"Faktúra č. {number} – Žďár nad Sázavou"
    msg["Message-ID"] = f"<faktura-{number}@kosice-stavby.sk>"
    msg.set_content(f"Dobrý deň, v prílohe posielame faktúru č. {number}. Ďakujeme.")
    msg.add_attachment(
        PDF, maintype="application", subtype="pdf", filename=f"Faktúra {number} – Šťastný.pdf"
    )
    return msg.as_bytes()


@pytest.fixture(scope="module", autouse=True)
def _mailbox(mail_server: LocalMailServer) -> None:
    mail_server.add_mailbox(MAILBOX, PASSWORD)


def _reader(server: LocalMailServer, password: str = PASSWORD) -> ImapReader:
    return ImapReader(server.host, server.imap_port, MAILBOX, password)


def test_uid_checkpoint_reads_every_mail_once_with_attachments(
    mail_server: LocalMailServer,
) -> None:
    mail_server.append(MAILBOX, _invoice_mail(1))
    mail_server.append(MAILBOX, _invoice_mail(2))

    with _reader(mail_server) as reader:
        first, checkpoint = reader.read_new(None)
    assert [m.message_id for m in first] == [
        "<faktura-1@kosice-stavby.sk>",
        "<faktura-2@kosice-stavby.sk>",
    ]
    invoice = first[0]
    assert invoice.subject == "Faktúra č. 1 – Žďár nad Sázavou"
    assert invoice.sender == "uctaren@kosice-stavby.sk"
    assert "Ďakujeme" in invoice.text
    assert [a.filename for a in invoice.attachments] == ["Faktúra 1 – Šťastný.pdf"]
    assert invoice.attachments[0].data == PDF
    assert invoice.attachments[0].content_type == "application/pdf"

    # The checkpoint survives as text (that is how the engine stores it).
    stored = MailCheckpoint.decode(checkpoint.encode())
    with _reader(mail_server) as reader:
        again, same = reader.read_new(stored)
    assert again == []
    assert same == checkpoint

    mail_server.append(MAILBOX, _invoice_mail(3))
    with _reader(mail_server) as reader:
        new, after_new = reader.read_new(stored)
        none_left, _ = reader.read_new(after_new)
    assert [m.message_id for m in new] == ["<faktura-3@kosice-stavby.sk>"]
    assert none_left == []


def test_changed_uidvalidity_reads_the_mailbox_again(mail_server: LocalMailServer) -> None:
    mail_server.append(MAILBOX, _invoice_mail(10))
    with _reader(mail_server) as reader:
        everything = reader.all_uids()
        stale = MailCheckpoint(uidvalidity=reader.uidvalidity + 1, last_uid=everything[-1])
        messages, checkpoint = reader.read_new(stale)
    assert [m.uid for m in messages] == everything
    assert checkpoint.uidvalidity != stale.uidvalidity


def test_wrong_password_is_an_auth_error(mail_server: LocalMailServer) -> None:
    with pytest.raises(AuthError, match="IMAP login rejected"):
        _reader(mail_server, password="spatne-heslo").connect()


def test_imap_server_down_is_transient() -> None:
    reader = ImapReader("127.0.0.1", free_port(), MAILBOX, PASSWORD)
    with pytest.raises(TransientError, match="unreachable"):
        reader.connect()


def _sender(server: LocalMailServer, tmp_path: Path, port: int | None = None) -> SmtpSender:
    return SmtpSender(
        server.host,
        port or server.smtp_port,
        sender="spojka@strojirny-zdar.cz",
        sender_name="Spojka – Strojírny Žďár",
        sent_log=SentLog(tmp_path / "sent.sqlite3"),
    )


def test_notification_is_sent_once_and_arrives_intact(
    mail_server: LocalMailServer, tmp_path: Path
) -> None:
    sender = _sender(mail_server, tmp_path)
    notification = Notification(
        idempotency_key="deal-won:7f1c:obchod",
        to=[MAILBOX],
        subject="Obchod vyhrán: Údržba linky – Šumperk",
        text="Zakázka je vyhraná. Příloha: objednávka.",
        attachments=[MailAttachment("Objednávka č. 42.pdf", "application/pdf", PDF)],
    )
    expected_id = notification_message_id(notification.idempotency_key, "strojirny-zdar.cz")
    caught_before = len(mail_server.caught)
    with _reader(mail_server) as reader:
        _, checkpoint = reader.read_new(None)

    first = sender.send(notification)
    second = sender.send(notification)  # a retried workflow step
    # A fresh sender over the same log (a restarted worker) also refuses.
    third = _sender(mail_server, tmp_path).send(notification)

    assert first.sent and first.message_id == expected_id
    assert not second.sent and not third.sent
    assert len(mail_server.caught) == caught_before + 1
    with _reader(mail_server) as reader:
        arrived, _ = reader.read_new(checkpoint)
    assert [m.message_id for m in arrived] == [expected_id]
    assert arrived[0].subject == "Obchod vyhrán: Údržba linky – Šumperk"
    assert arrived[0].attachments[0].filename == "Objednávka č. 42.pdf"
    assert arrived[0].attachments[0].data == PDF


def test_smtp_down_is_transient_and_the_retry_sends(
    mail_server: LocalMailServer, tmp_path: Path
) -> None:
    notification = Notification(
        idempotency_key="invoice-paid:2026-0042",
        to=["financie@kosice-stavby.sk"],
        subject="Faktúra 2026-0042 uhradená",
        text="Platba prijatá.",
    )
    with pytest.raises(TransientError, match="unreachable"):
        _sender(mail_server, tmp_path, port=free_port()).send(notification)
    result = _sender(mail_server, tmp_path).send(notification)
    assert result.sent
    assert mail_server.caught[-1].rcpt_tos == ["financie@kosice-stavby.sk"]
