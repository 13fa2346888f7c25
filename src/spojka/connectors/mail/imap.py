"""Reading mail over IMAP with UID checkpoints.

A checkpoint is ``(uidvalidity, last_uid)`` of one mailbox. UIDs only grow while the
mailbox's UIDVALIDITY stays the same, so "everything after ``last_uid``" is exactly the new
mail. When UIDVALIDITY changes (the mailbox was recreated or the server rebuilt its index)
the old UIDs mean nothing and the reader starts again from the beginning; the sync engine's
de-duplication by Message-ID keeps that from creating duplicates.

Messages are fetched with ``BODY.PEEK[]`` so reading never marks them as seen for people
who use the same mailbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from spojka.core.errors import AuthError, NotFoundError, TransientError, ValidationError
from spojka.core.logging import get_logger

log = get_logger(__name__)

_FETCH_BATCH = 50


@dataclass(frozen=True, order=True)
class MailCheckpoint:
    """Where reading a mailbox stopped: its UIDVALIDITY and the last UID handed out."""

    uidvalidity: int
    last_uid: int

    def encode(self) -> str:
        # Zero-padded so checkpoints compare correctly as text (the engine's cursor is text).
        return f"{self.uidvalidity:010d}:{self.last_uid:012d}"

    @classmethod
    def decode(cls, text: str | None) -> MailCheckpoint | None:
        if not text:
            return None
        try:
            validity, uid = text.split(":", 1)
            return cls(int(validity), int(uid))
        except ValueError:
            raise ValidationError(f"not a mail checkpoint: {text!r}") from None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class MailMessage:
    """One message as read from the mailbox."""

    uid: int
    uidvalidity: int
    message_id: str
    subject: str
    sender: str
    to: list[str]
    cc: list[str]
    date: datetime | None
    text: str
    html: str
    attachments: list[Attachment]
    in_reply_to: str
    references: list[str]
    raw_size: int

    @property
    def checkpoint(self) -> MailCheckpoint:
        return MailCheckpoint(self.uidvalidity, self.uid)

    def as_record(self) -> dict[str, Any]:
        """A JSON-able record for the sync engine (attachments by name, type, size, hash)."""
        attachments = [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in self.attachments
        ]
        return {
            "id": self.message_id or f"uid:{self.uidvalidity}:{self.uid}",
            "uid": self.uid,
            "uidvalidity": self.uidvalidity,
            "checkpoint": self.checkpoint.encode(),
            "message_id": self.message_id,
            "subject": self.subject,
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "date": self.date.isoformat() if self.date else None,
            "text": self.text,
            "html": self.html,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "attachments": attachments,
            # What a canonical Activity keeps in `extra` (see the default mapping).
            "envelope": {
                "message_id": self.message_id,
                "from": self.sender,
                "to": self.to,
                "cc": self.cc,
                "attachments": attachments,
            },
        }


def parse_message(raw: bytes, *, uid: int, uidvalidity: int) -> MailMessage:
    """Parse RFC 5322 bytes into a :class:`MailMessage` (headers decoded, parts split)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        ctype = part.get_content_type()
        if disposition == "attachment" or (filename and disposition != "inline"):
            payload = part.get_payload(decode=True)
            attachments.append(
                Attachment(
                    filename=filename or "attachment",
                    content_type=ctype,
                    data=payload if isinstance(payload, bytes) else b"",
                )
            )
        elif ctype == "text/plain":
            text_parts.append(_text_of(part))
        elif ctype == "text/html":
            html_parts.append(_text_of(part))
        elif filename:
            payload = part.get_payload(decode=True)
            attachments.append(
                Attachment(filename, ctype, payload if isinstance(payload, bytes) else b"")
            )
    date: datetime | None = None
    if msg["Date"]:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            date = parsedate_to_datetime(str(msg["Date"]))
    return MailMessage(
        uid=uid,
        uidvalidity=uidvalidity,
        message_id=str(msg["Message-ID"] or "").strip(),
        subject=str(msg["Subject"] or ""),
        sender=_first_address(msg, "From"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        date=date,
        text="\n".join(text_parts),
        html="\n".join(html_parts),
        attachments=attachments,
        in_reply_to=str(msg["In-Reply-To"] or "").strip(),
        references=str(msg["References"] or "").split(),
        raw_size=len(raw),
    )


def _text_of(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeDecodeError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _addresses(msg: EmailMessage, header: str) -> list[str]:
    values = msg.get_all(header) or []
    return [addr for _name, addr in getaddresses([str(v) for v in values]) if addr]


def _first_address(msg: EmailMessage, header: str) -> str:
    found = _addresses(msg, header)
    return found[0] if found else ""


class ImapReader:
    """Reads one mailbox; connect per use (``with ImapReader(...) as reader``)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        mailbox: str = "INBOX",
        security: str = "none",  # "none" | "starttls" | "ssl"
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.mailbox = mailbox
        self.security = security
        self.timeout = timeout
        self._imap: imaplib.IMAP4 | None = None
        self.uidvalidity = 0

    def __repr__(self) -> str:
        return f"ImapReader(host={self.host!r}, port={self.port}, mailbox={self.mailbox!r})"

    # -- connection ------------------------------------------------------------------
    def connect(self) -> ImapReader:
        try:
            if self.security == "ssl":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host,
                    self.port,
                    ssl_context=ssl.create_default_context(),
                    timeout=self.timeout,
                )
            else:
                imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    imap.starttls(ssl.create_default_context())
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise TransientError(
                f"IMAP server {self.host}:{self.port} is unreachable ({type(exc).__name__})"
            ) from exc
        try:
            imap.login(self.username, self._password)
        except imaplib.IMAP4.error as exc:
            with contextlib.suppress(Exception):
                imap.logout()
            raise AuthError(
                f"IMAP login rejected by {self.host}:{self.port}; check the mailbox password"
            ) from exc
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise TransientError(f"IMAP connection to {self.host} broke during login") from exc
        self._imap = imap
        self._select()
        return self

    def _select(self) -> None:
        imap = self._require()
        with _imap_errors(self.host):
            typ, _data = imap.select(_quote(self.mailbox), readonly=True)
            if typ != "OK":
                raise NotFoundError(f"IMAP mailbox {self.mailbox!r} not found")
            _typ, validity = imap.response("UIDVALIDITY")
        try:
            self.uidvalidity = int(validity[0]) if validity and validity[0] else 0
        except (TypeError, ValueError):
            self.uidvalidity = 0

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is not None:
            with contextlib.suppress(Exception):
                imap.logout()

    def __enter__(self) -> ImapReader:
        return self.connect() if self._imap is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise TransientError("IMAP reader is not connected")
        return self._imap

    # -- reading ---------------------------------------------------------------------
    def new_uids(self, checkpoint: MailCheckpoint | None) -> list[int]:
        """UIDs after the checkpoint (all of them when UIDVALIDITY changed)."""
        imap = self._require()
        after = 0
        if checkpoint is not None and checkpoint.uidvalidity == self.uidvalidity:
            after = checkpoint.last_uid
        elif checkpoint is not None:
            log.info("imap.uidvalidity_changed", mailbox=self.mailbox)
        with _imap_errors(self.host):
            typ, data = imap.uid("SEARCH", "UID", f"{after + 1}:*")
        if typ != "OK":
            raise TransientError(f"IMAP UID SEARCH failed on {self.host}")
        uids = sorted(int(x) for x in (data[0] or b"").split())
        # "n:*" always matches the highest UID, even one below n: filter it out.
        return [uid for uid in uids if uid > after]

    def fetch(self, uids: list[int]) -> Iterator[MailMessage]:
        imap = self._require()
        for start in range(0, len(uids), _FETCH_BATCH):
            batch = uids[start : start + _FETCH_BATCH]
            with _imap_errors(self.host):
                typ, data = imap.uid("FETCH", ",".join(map(str, batch)), "(UID BODY.PEEK[])")
            if typ != "OK":
                raise TransientError(f"IMAP UID FETCH failed on {self.host}")
            found: dict[int, bytes] = {}
            for item in data:
                if not isinstance(item, tuple):
                    continue
                match = re.search(rb"UID (\d+)", item[0])
                if match:
                    found[int(match.group(1))] = item[1]
            for uid in batch:
                if uid in found:  # an expunged message simply is not there
                    yield parse_message(found[uid], uid=uid, uidvalidity=self.uidvalidity)

    def read_new(
        self, checkpoint: MailCheckpoint | None, *, limit: int | None = None
    ) -> tuple[list[MailMessage], MailCheckpoint]:
        """Messages after ``checkpoint`` (at most ``limit``) and the checkpoint to store."""
        uids = self.new_uids(checkpoint)
        if limit is not None:
            uids = uids[:limit]
        messages = list(self.fetch(uids))
        if uids:
            next_checkpoint = MailCheckpoint(self.uidvalidity, uids[-1])
        elif checkpoint is not None and checkpoint.uidvalidity == self.uidvalidity:
            next_checkpoint = checkpoint
        else:
            next_checkpoint = MailCheckpoint(self.uidvalidity, 0)
        return messages, next_checkpoint

    def all_uids(self) -> list[int]:
        return self.new_uids(None)


def _quote(mailbox: str) -> str:
    if mailbox.upper() == "INBOX" or re.fullmatch(r"[A-Za-z0-9._/-]+", mailbox):
        return mailbox
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def _imap_errors(host: str) -> Iterator[None]:
    try:
        yield
    except (TimeoutError, imaplib.IMAP4.abort, OSError) as exc:
        raise TransientError(f"IMAP connection to {host} failed ({type(exc).__name__})") from exc
    except imaplib.IMAP4.error as exc:
        raise TransientError(f"IMAP server {host} refused a command") from exc
