"""E-mail as a Spojka connector: a mailbox read over IMAP, notifications sent over SMTP.

Config (passwords resolved from the secret store by the caller)::

    imap_host: mail.firma.cz
    imap_port: 993
    imap_security: ssl            # none | starttls | ssl
    imap_user: obchod@firma.cz
    imap_password: "…"
    mailbox: INBOX                # optional
    smtp_host: mail.firma.cz      # optional: only for the notifications stream
    smtp_port: 587
    smtp_security: starttls
    smtp_user: spojka@firma.cz    # optional
    smtp_password: "…"
    sender: spojka@firma.cz
    sender_name: Spojka
    sent_log: /var/lib/spojka/mail/sent.sqlite3   # optional; default under data_dir
    default_to: [obchod@firma.cz]                 # optional recipients of notifications

Streams:

* ``messages`` (read): every message of the mailbox after the checkpoint
  ``"<uidvalidity>:<uid>"``, the stream's cursor. Attachments are described in the record
  (name, type, size, SHA-256); :meth:`MailConnector.attachments` returns their bytes.
* ``notifications`` (write): each write sends one e-mail whose Message-ID derives from the
  engine's idempotency key, and a sent-log refuses to send the same one twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from spojka.connectors.base import Connector, Health, Page, Stream, WriteResult
from spojka.connectors.mail.imap import Attachment, ImapReader, MailCheckpoint
from spojka.connectors.mail.smtp import Notification, SentLog, SmtpSender
from spojka.core.errors import ConfigError, PermanentError, ValidationError

STREAMS: tuple[Stream, ...] = (
    Stream(
        "messages",
        "Activity",
        primary_key="id",
        cursor_field="checkpoint",
        cursor_type="str",
        page_size=50,
        writable=False,
    ),
    Stream("notifications", "Activity", page_size=50),
)


def _recipients(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ValidationError(f"not a list of e-mail addresses: {value!r}")


class MailConnector(Connector):
    """A mailbox (IMAP) to read and an SMTP server to notify through."""

    kind = "mail"
    capabilities: ClassVar[tuple[str, ...]] = ("read", "write")

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._sender: SmtpSender | None = None

    def __repr__(self) -> str:
        return f"MailConnector(imap={self.config.get('imap_host')!r})"

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    # -- reading -------------------------------------------------------------------
    def _reader(self) -> ImapReader:
        host = self.config.get("imap_host")
        user = self.config.get("imap_user")
        if not host or not user:
            raise ConfigError("mail connection needs imap_host and imap_user to read mail")
        security = str(self.config.get("imap_security", "none"))
        default_port = 993 if security == "ssl" else 143
        return ImapReader(
            str(host),
            int(self.config.get("imap_port", default_port)),
            str(user),
            str(self.config.get("imap_password", "")),
            mailbox=str(self.config.get("mailbox", "INBOX")),
            security=security,
            timeout=float(self.config.get("timeout", 30.0)),
        )

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        if stream.name != "messages":
            return Page(records=[])
        checkpoint = MailCheckpoint.decode(page_token or since)
        with self._reader() as reader:
            uids = reader.new_uids(checkpoint)
            batch = uids[: stream.page_size]
            messages = list(reader.fetch(batch))
            more = len(uids) > len(batch)
        records = [m.as_record() for m in messages]
        if more and messages:
            return Page(records, next_token=messages[-1].checkpoint.encode())
        return Page(records)

    def list_ids(self, stream: Stream) -> Iterable[str]:
        if stream.name != "messages":
            return []
        ids: list[str] = []
        page_token: str | None = None
        while True:
            page = self.read_page(stream, since=None, page_token=page_token)
            ids.extend(str(r["id"]) for r in page.records)
            if page.next_token is None:
                return ids
            page_token = page.next_token

    def attachments(self, checkpoint: str) -> list[Attachment]:
        """The attachment bytes of the message at ``checkpoint`` (from its record)."""
        point = MailCheckpoint.decode(checkpoint)
        assert point is not None
        with self._reader() as reader:
            if reader.uidvalidity != point.uidvalidity:
                raise PermanentError("the mailbox was rebuilt since; read the message again")
            for message in reader.fetch([point.last_uid]):
                return list(message.attachments)
        raise PermanentError(f"message {checkpoint} is no longer in the mailbox")

    # -- writing -------------------------------------------------------------------
    def _smtp(self) -> SmtpSender:
        if self._sender is None:
            host = self.config.get("smtp_host")
            sender = self.config.get("sender")
            if not host or not sender:
                raise ConfigError("mail connection needs smtp_host and sender to send mail")
            security = str(self.config.get("smtp_security", "none"))
            default_port = {"ssl": 465, "starttls": 587}.get(security, 25)
            log_path = self.config.get("sent_log")
            if not log_path:
                from spojka.core.settings import load_settings

                log_path = Path(load_settings().data_dir) / "mail" / "sent.sqlite3"
            self._sender = SmtpSender(
                str(host),
                int(self.config.get("smtp_port", default_port)),
                sender=str(sender),
                sender_name=self.config.get("sender_name"),
                username=self.config.get("smtp_user"),
                password=self.config.get("smtp_password"),
                security=security,
                sent_log=SentLog(Path(log_path)),
                timeout=float(self.config.get("timeout", 30.0)),
            )
        return self._sender

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        if stream.name != "notifications":
            raise PermanentError(f"mail: stream {stream.name!r} is read-only")
        to = _recipients(record.get("to")) or _recipients(self.config.get("default_to"))
        if not to:
            raise ValidationError("mail: a notification needs `to` (or default_to in the config)")
        subject = str(record.get("subject") or "").strip()
        if not subject:
            raise ValidationError("mail: a notification needs a subject")
        notification = Notification(
            idempotency_key=idempotency_key,
            to=to,
            cc=_recipients(record.get("cc")),
            subject=subject,
            text=str(record.get("body") or record.get("text") or subject),
            html=record.get("html"),
        )
        result = self._smtp().send(notification)
        return WriteResult(external_id=result.message_id, created=result.sent)

    # -- health --------------------------------------------------------------------
    def health(self) -> Health:
        import time

        started = time.perf_counter()
        with self._reader() as reader:
            uids = reader.all_uids()
        return Health(
            ok=True,
            detail=f"IMAP login accepted; {len(uids)} message(s) in the mailbox",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )


def default_mapping() -> str:
    """The shipped mapping YAML (copy it to change it)."""
    return (Path(__file__).parent / "mappings" / "default.yaml").read_text(encoding="utf-8")
