"""Sending notifications over SMTP, each at most once.

A notification carries an idempotency key (e.g. ``"deal-won:<deal id>:finance"``). Its
Message-ID is derived from that key, so the same notification always has the same
Message-ID, and a sent-log keyed by Message-ID refuses to send it twice even when a workflow
step runs again after a crash. The log records ``sending`` before talking to the server and
``sent`` after: a crash in between leaves ``sending``, and the retry sends again with the
same Message-ID (mail clients collapse such a duplicate) — the only way to never lose one.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from spojka.core.errors import AuthError, PermanentError, TransientError, ValidationError
from spojka.core.logging import get_logger

log = get_logger(__name__)


def notification_message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID a notification with this key always gets."""
    if not idempotency_key:
        raise ValidationError("a notification needs an idempotency key")
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<spojka.{digest}@{domain}>"


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Notification:
    idempotency_key: str
    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    cc: Sequence[str] = ()
    reply_to: str | None = None
    in_reply_to: str | None = None
    attachments: Sequence[MailAttachment] = ()


@dataclass(frozen=True)
class SendResult:
    message_id: str
    sent: bool  # False: it had been sent before, nothing went out now
    accepted: tuple[str, ...] = ()


class SentLog:
    """A small SQLite ledger of Message-IDs and their state (``sending`` / ``sent``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sent_mail ("
                " message_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL,"
                " state TEXT NOT NULL, recipients INTEGER NOT NULL,"
                " first_attempt_at REAL NOT NULL, sent_at REAL)"
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    def claim(self, message_id: str, idempotency_key: str, recipients: int) -> bool:
        """True when this caller should send; False when it was already sent."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT state FROM sent_mail WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is not None and row[0] == "sent":
                db.execute("COMMIT")
                return False
            if row is None:
                db.execute(
                    "INSERT INTO sent_mail (message_id, idempotency_key, state, recipients,"
                    " first_attempt_at) VALUES (?, ?, 'sending', ?, ?)",
                    (message_id, idempotency_key, recipients, time.time()),
                )
            db.execute("COMMIT")
            return True

    def mark_sent(self, message_id: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE sent_mail SET state = 'sent', sent_at = ? WHERE message_id = ?",
                (time.time(), message_id),
            )

    def state(self, message_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT state FROM sent_mail WHERE message_id = ?", (message_id,)
            ).fetchone()
        return None if row is None else str(row[0])


class SmtpSender:
    """Sends notifications through one SMTP server, at most once per idempotency key."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        sent_log: SentLog,
        sender_name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        security: str = "none",  # "none" | "starttls" | "ssl"
        timeout: float = 30.0,
        message_id_domain: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.sender_name = sender_name
        self.username = username
        self._password = password
        self.security = security
        self.timeout = timeout
        self.sent_log = sent_log
        self.domain = message_id_domain or sender.rpartition("@")[2] or "spojka.local"

    def __repr__(self) -> str:
        return f"SmtpSender(host={self.host!r}, port={self.port})"

    def build(self, notification: Notification) -> EmailMessage:
        if not notification.to:
            raise ValidationError("a notification needs at least one recipient")
        msg = EmailMessage()
        msg["Message-ID"] = notification_message_id(notification.idempotency_key, self.domain)
        msg["From"] = (
            formataddr((self.sender_name, self.sender)) if self.sender_name else (self.sender)
        )
        msg["To"] = ", ".join(notification.to)
        if notification.cc:
            msg["Cc"] = ", ".join(notification.cc)
        if notification.reply_to:
            msg["Reply-To"] = notification.reply_to
        if notification.in_reply_to:
            msg["In-Reply-To"] = notification.in_reply_to
            msg["References"] = notification.in_reply_to
        msg["Subject"] = notification.subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["X-Spojka-Idempotency-Key"] = hashlib.sha256(
            notification.idempotency_key.encode()
        ).hexdigest()[:16]
        msg.set_content(notification.text)
        if notification.html:
            msg.add_alternative(notification.html, subtype="html")
        for attachment in notification.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            msg.add_attachment(
                attachment.data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=attachment.filename,
            )
        return msg

    def send(self, notification: Notification) -> SendResult:
        """Send unless a notification with the same key was sent before."""
        msg = self.build(notification)
        message_id = str(msg["Message-ID"])
        recipients = [*notification.to, *notification.cc]
        if not self.sent_log.claim(message_id, notification.idempotency_key, len(recipients)):
            log.info("mail.duplicate_skipped", message_id=message_id)
            return SendResult(message_id=message_id, sent=False)
        refused = self._deliver(msg, recipients)
        self.sent_log.mark_sent(message_id)
        accepted = tuple(r for r in recipients if r not in refused)
        log.info("mail.sent", message_id=message_id, recipients=len(accepted))
        return SendResult(message_id=message_id, sent=True, accepted=accepted)

    def _deliver(self, msg: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        try:
            with self._open() as smtp:
                if self.username:
                    smtp.login(self.username, self._password or "")
                return smtp.send_message(msg, from_addr=self.sender, to_addrs=recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthError(
                f"{exc.smtp_code} from SMTP server {self.host}: login rejected"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _msg in exc.recipients.values()}
            if all(400 <= code < 500 for code in codes):
                raise TransientError(f"SMTP server {self.host} deferred every recipient") from exc
            raise PermanentError(
                f"SMTP server {self.host} refused every recipient "
                f"({', '.join(str(c) for c in sorted(codes))})"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientError(
                    f"SMTP server {self.host} answered {exc.smtp_code}; try again later"
                ) from exc
            raise PermanentError(
                f"SMTP server {self.host} refused the message ({exc.smtp_code})"
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(
                f"SMTP server {self.host}:{self.port} is unreachable ({type(exc).__name__})"
            ) from exc

    def _open(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.domain,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        # An explicit EHLO name: smtplib's default asks DNS for this host's FQDN, which
        # can stall for seconds on machines without a resolver answer.
        smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.domain, timeout=self.timeout)
        if self.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        return smtp
