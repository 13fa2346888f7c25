"""A real Dovecot (IMAP) and aiosmtpd (SMTP) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spojka.localsystems.mail import LocalMailServer


@pytest.fixture(scope="module")
def mail_server() -> Iterator[LocalMailServer]:
    server = LocalMailServer().start()
    try:
        yield server
    finally:
        server.stop()
