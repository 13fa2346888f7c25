import io
import json
import logging

import pytest

from spojka.core import tracing
from spojka.core.logging import configure_logging, get_logger, redact_text

PERSONAL = [
    ("napište na jana.novakova@firma.cz prosím", "jana.novakova@firma.cz"),
    ("volejte +420 603 123 456", "603 123 456"),
    ("volejte 603123456", "603123456"),
    ("účet CZ65 0800 0000 1920 0014 5399", "0800 0000 1920"),
    ("IBAN SK3112000000198742637541", "SK3112000000198742637541"),
    ("karta 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("rodné číslo 805412/1234", "805412/1234"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9"),
    ("token spk_0a1b2c3d4e5f_SECRETSECRETSECRET", "SECRETSECRETSECRET"),
]


@pytest.mark.parametrize(("text", "secret"), PERSONAL)
def test_personal_data_and_secrets_are_masked(text: str, secret: str):
    assert secret not in redact_text(text)


def test_ordinary_business_text_is_kept():
    text = "Objednávka 2025-0042 za 15000 Kč, IČO 25596641, 3 položky"
    assert redact_text(text) == text


def test_every_log_line_is_json_with_trace_id_and_redacted():
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    with tracing.trace_context("4bf92f3577b34da6a3ce929d0e0e4736"):
        get_logger("test").info(
            "sent invoice to petr.svoboda@example.sk",
            password="hunter2",
            headers={"Authorization": "Basic dXNlcjpwYXNz"},
            phone="+421 905 123 456",
        )
        logging.getLogger("thirdparty").warning("user karel@example.cz failed login")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "petr.svoboda" not in first["event"]
    assert first["password"] == "[REDACTED]"
    assert first["headers"]["Authorization"] == "[REDACTED]"
    assert "905" not in first["phone"]
    assert "karel@example.cz" not in second["event"]
    assert second["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
