"""Supplier invoices from a mailbox: attachments → stored documents → ``documents.ap_intake``.

Each intake reads the messages after the mailbox's stored UID checkpoint, stores every invoice
attachment once by content hash (``add_document``) and queues the AP flow for it (the workflow
id from the hash, so a file mailed twice runs once). The checkpoint moves on only after the
documents of a message are committed; reading again after a crash repeats nothing harmful.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from spojka.bootstrap import Spojka
from spojka.connectors.mail.imap import Attachment, ImapReader, MailCheckpoint
from spojka.core.db import Base, transaction, utcnow
from spojka.core.logging import get_logger
from spojka.documents.intake import take_in

log = get_logger("spojka.documents.mail")

# What a supplier invoice arrives as; signatures, logos in signatures etc. are skipped.
INVOICE_SUFFIXES = frozenset(
    {".isdoc", ".isdocx", ".xml", ".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
)


class MailboxCheckpoint(Base):
    __tablename__ = "documents_mailbox_checkpoint"

    mailbox: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    checkpoint: Mapped[str] = mapped_column(sa.String(40))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass
class IntakeItem:
    message_id: str
    filename: str
    document_id: int
    new_file: bool
    workflow_id: str | None


@dataclass
class MailIntakeResult:
    messages: int = 0
    items: list[IntakeItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # attachments that are not invoices
    checkpoint: str | None = None


def is_invoice_attachment(attachment: Attachment) -> bool:
    suffix = PurePath(attachment.filename or "").suffix.lower()
    return suffix in INVOICE_SUFFIXES or attachment.content_type in (
        "application/pdf",
        "application/xml",
        "text/xml",
    )


def mailbox_key(reader: ImapReader) -> str:
    return f"{reader.username}@{reader.host}:{reader.port}/{reader.mailbox}"[:300]


def intake(app: Spojka, reader: ImapReader, *, start_flows: bool = True) -> MailIntakeResult:
    """Read new mail from ``reader`` (connected) and take in its invoice attachments."""
    key = mailbox_key(reader)
    with app.sessions() as session:
        row = session.get(MailboxCheckpoint, key)
        checkpoint = MailCheckpoint.decode(row.checkpoint) if row else None
    messages, _ = reader.read_new(checkpoint)
    result = MailIntakeResult(messages=len(messages))
    for message in messages:
        for attachment in message.attachments:
            if not is_invoice_attachment(attachment):
                result.skipped.append(attachment.filename)
                continue
            name = PurePath(attachment.filename or "invoice.pdf").name
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / name
                path.write_bytes(attachment.data)
                taken = take_in(
                    app,
                    path,
                    actor=f"mail:{message.sender}"[:200],
                    filename=name,
                    start_flow=start_flows,
                    subject=f"{name} ({message.sender})",
                )
            result.items.append(
                IntakeItem(
                    message.message_id,
                    name,
                    taken.document_id,
                    taken.result.new_file,
                    taken.workflow_id,
                )
            )
        with transaction(app.sessions) as session:
            row = session.get(MailboxCheckpoint, key)
            if row is None:
                row = MailboxCheckpoint(mailbox=key, checkpoint="")
                session.add(row)
            row.checkpoint = message.checkpoint.encode()
            row.updated_at = utcnow()
        result.checkpoint = message.checkpoint.encode()
    log.info(
        "documents.mail_intake", mailbox=key, messages=len(messages), documents=len(result.items)
    )
    return result
