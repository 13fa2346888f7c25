"""Real local mail servers for tests and the demo: Dovecot (IMAP) and aiosmtpd (SMTP).

Dovecot comes from Debian (``dovecot-imapd``, installed on first use when missing and we are
root). Each :class:`LocalMailServer` runs its own Dovecot in the foreground with its own
configuration, users file and maildirs in a fresh folder, on a free port, with plain-text
login on loopback only. The SMTP side is an ``aiosmtpd`` server in this process: every
message it accepts is written to ``<folder>/smtp/`` (a catcher for outgoing notifications)
and, for a recipient that has a mailbox here, appended to that mailbox over IMAP, so an IMAP
reader sees it like a delivered mail.

Run ``python -m spojka.localsystems.mail`` to serve one pair until Ctrl+C.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import grp
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from spojka.core.errors import ConfigError, TransientError
from spojka.localsystems.common import (
    ManagedProcess,
    cache_dir,
    free_port,
    run_checked,
    stop_on_sigterm,
)

DOVECOT_PACKAGE = "dovecot-imapd"


# --- Dovecot install -----------------------------------------------------------------------


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_dovecot() -> str:
    """Path of the dovecot binary, installing Debian's ``dovecot-imapd`` when missing."""
    found = dovecot_binary()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ConfigError(
            "the local IMAP server needs Dovecot: run `apt-get install dovecot-imapd` as root"
        )
    with _locked(cache_dir("mail") / "install.lock"):
        found = dovecot_binary()
        if found:
            return found
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", DOVECOT_PACKAGE]
        try:
            run_checked(install, env=env, timeout=900)
        except TransientError:
            run_checked(["apt-get", "update", "-q"], env=env, timeout=900)
            run_checked(install, env=env, timeout=900)
        # The package may start the system-wide service; ours runs on its own config.
        found = dovecot_binary()
        if not found:
            raise ConfigError(f"{DOVECOT_PACKAGE} installed but no dovecot binary found")
        return found


# --- server ----------------------------------------------------------------------------------


@dataclass
class Mailbox:
    address: str
    password: str


@dataclass
class CaughtMessage:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    path: Path


def _wait_for_greeting(
    port: int, prefix: bytes, *, timeout: float, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise TransientError(f"dovecot exited with {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(prefix):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TransientError(f"IMAP server on port {port} did not greet within {timeout:.0f}s ({last})")


class LocalMailServer:
    """A Dovecot IMAP server and an aiosmtpd SMTP server for one test module or demo."""

    def __init__(self, folder: Path | None = None) -> None:
        self._owns_folder = folder is None
        # Under /tmp, not the cache: Dovecot's mail user must be able to traverse the path.
        self.folder = folder or Path(tempfile.mkdtemp(prefix="spojka-mail-"))
        self.folder.chmod(0o755)
        self.imap_port = 0
        self.smtp_port = 0
        self.host = "127.0.0.1"
        self.mailboxes: dict[str, Mailbox] = {}
        self.caught: list[CaughtMessage] = []
        self._process: ManagedProcess | None = None
        self._smtp: Any = None
        self._lock = threading.Lock()
        self._uid, self._gid, self._internal_user = self._mail_identity()

    # -- identity ------------------------------------------------------------------
    @staticmethod
    def _mail_identity() -> tuple[int, int, str]:
        """Which uid owns the maildirs. Dovecot refuses uid 0, so root uses ``dovecot``."""
        if os.geteuid() != 0:
            return os.geteuid(), os.getegid(), getpass.getuser()
        ensure_dovecot()  # its package creates the user (first use on a fresh machine)
        try:
            entry = pwd.getpwnam("dovecot")
        except KeyError:
            raise ConfigError("user 'dovecot' missing: reinstall dovecot-core") from None
        return entry.pw_uid, entry.pw_gid, "dovecot"

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> LocalMailServer:
        binary = ensure_dovecot()
        self.imap_port = free_port()
        for sub in ("run", "state", "mail", "home", "smtp"):
            (self.folder / sub).mkdir(exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.folder / sub, self._uid, self._gid)
        users = self.folder / "users"
        users.touch()
        users.chmod(0o644)
        config = self.folder / "dovecot.conf"
        config.write_text(self._config())
        log = self.folder / "dovecot-stdout.log"
        self._process = ManagedProcess(argv=[binary, "-F", "-c", str(config)], log_path=log)
        proc = self._process.start()
        try:
            _wait_for_greeting(self.imap_port, b"* OK", timeout=30, process=proc, log=log)
            self._start_smtp()
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self) -> str:
        login_user = self._internal_user if os.geteuid() != 0 else "dovenull"
        group_name = grp.getgrgid(self._gid).gr_name
        return f"""\
# Spojka's local Dovecot: loopback only, plain-text login, maildirs in this folder.
instance_name = spojka-{self.imap_port}
base_dir = {self.folder}/run
state_dir = {self.folder}/state
log_path = {self.folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A test of a wrong password should not wait the default two seconds.
auth_failure_delay = 0
default_internal_user = {self._internal_user}
default_internal_group = {group_name}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{self.folder}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.folder}/users
}}
userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={self.folder}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: after a test of a wrong password, later logins must not be slowed.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _start_smtp(self) -> None:
        from aiosmtpd.controller import Controller

        self.smtp_port = free_port()
        self._smtp = Controller(_DeliveringHandler(self), hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()

    def stop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.stop()
            self._smtp = None
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def kill_imap(self) -> None:
        """Stop Dovecot abruptly (for "server down" tests)."""
        if self._process is not None:
            self._process.kill()

    def __enter__(self) -> LocalMailServer:
        return self.start() if self._process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- users and mail ------------------------------------------------------------
    def add_mailbox(self, address: str, password: str) -> Mailbox:
        """Create a user; Dovecot re-reads the users file when it changes."""
        if ":" in address or "\n" in address or "\n" in password:
            raise ValueError("address and password may not contain ':' or newlines")
        with self._lock:
            self.mailboxes[address.lower()] = Mailbox(address, password)
            lines = [f"{m.address}:{{PLAIN}}{m.password}" for m in self.mailboxes.values()]
            users = self.folder / "users"
            tmp = users.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.chmod(0o644)
            tmp.replace(users)
        return self.mailboxes[address.lower()]

    def append(self, address: str, raw: bytes, *, mailbox: str = "INBOX") -> int:
        """Put a message into a user's mailbox over IMAP; return its UID."""
        box = self.mailboxes[address.lower()]
        imap = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        try:
            imap.login(box.address, box.password)
            if mailbox.upper() != "INBOX":
                imap.create(mailbox)
            typ, data = imap.append(mailbox, None, None, raw)
            if typ != "OK":
                raise TransientError(f"IMAP APPEND failed: {data!r}")
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(match.group(1)) if match else 0
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def _accept(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        with self._lock:
            path = self.folder / "smtp" / f"{len(self.caught) + 1:05d}.eml"
            path.write_bytes(raw)
            self.caught.append(CaughtMessage(mail_from, list(rcpt_tos), raw, path))
        for rcpt in rcpt_tos:
            address = getaddresses([rcpt])[0][1].lower()
            if address in self.mailboxes:
                self.append(address, raw)

    def info(self) -> dict[str, Any]:
        return {
            "imap": f"imap://{self.host}:{self.imap_port}",
            "smtp": f"smtp://{self.host}:{self.smtp_port}",
            "folder": str(self.folder),
            "mailboxes": sorted(self.mailboxes),
        }


@dataclass
class _DeliveringHandler:
    server: LocalMailServer
    errors: list[str] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        try:
            await asyncio.to_thread(
                self.server._accept, envelope.mail_from, list(envelope.rcpt_tos), raw
            )
        except Exception as exc:  # the client should retry: temporary failure
            self.errors.append(type(exc).__name__)
            return "451 4.3.0 local delivery failed, try again later"
        return "250 2.0.0 OK delivered"


def main() -> None:  # pragma: no cover - manual/demo entry point
    stop_on_sigterm()
    import json

    server = LocalMailServer().start()
    server.add_mailbox("obchod@spojka-demo.cz", "heslo-obchod")
    print(json.dumps(server.info()), flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
