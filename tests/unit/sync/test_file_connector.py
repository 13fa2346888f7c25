import json
from pathlib import Path

import pytest

from spojka.connectors import registry
from spojka.connectors.base import classify_status, sign_payload
from spojka.connectors.file import FileConnector
from spojka.core.errors import AuthError, TransientError, ValidationError


def _csv(path: Path, rows: int) -> None:
    lines = ["id;nazev;zmeneno"]
    lines += [f"{i};Firma {i} s.r.o.;2026-01-{1 + i % 28:02d}T10:00:00" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_registry_finds_file_connector_by_entry_point() -> None:
    assert registry.available()["file"] == "spojka.connectors.file:FileConnector"
    assert registry.connector_class("file") is FileConnector


def test_csv_pages_and_entity_from_czech_file_name(tmp_path: Path) -> None:
    _csv(tmp_path / "firmy.csv", 25)
    conn = FileConnector(
        {
            "path": str(tmp_path),
            "delimiter": ";",
            "streams": {"firmy": {"page_size": 10, "cursor_field": "zmeneno"}},
        }
    )
    stream = conn.stream("firmy")
    assert stream.entity == "Account"
    seen, token, pages = [], None, 0
    while True:
        page = conn.read_page(stream, since=None, page_token=token)
        seen += page.records
        pages += 1
        if page.next_token is None:
            break
        token = page.next_token
    assert [r["id"] for r in seen] == [str(i) for i in range(25)] and pages == 3
    # a fresh connector resumes from a stored token (after a restart)
    again = FileConnector(conn.config).read_page(stream, since=None, page_token="20")
    assert [r["id"] for r in again.records] == ["20", "21", "22", "23", "24"]


def test_since_filters_by_cursor(tmp_path: Path) -> None:
    _csv(tmp_path / "firmy.csv", 28)
    conn = FileConnector(
        {"path": str(tmp_path), "delimiter": ";", "streams": {"firmy": {"cursor_field": "zmeneno"}}}
    )
    page = conn.read_page(conn.stream("firmy"), since="2026-01-27T00:00:00", page_token=None)
    assert sorted(r["id"] for r in page.records) == ["26", "27"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xlsx"])
def test_write_is_idempotent_and_readable(tmp_path: Path, fmt: str) -> None:
    conn = FileConnector({"path": str(tmp_path), "streams": {"faktury": {"format": fmt}}})
    stream = conn.stream("faktury")
    assert stream.entity == "Invoice"
    first = conn.write(
        stream, {"cislo": "FV1", "castka": 100}, external_id=None, idempotency_key="evt-1:export"
    )
    again = FileConnector(conn.config).write(
        stream, {"cislo": "FV1", "castka": 100}, external_id=None, idempotency_key="evt-1:export"
    )
    assert first.external_id == again.external_id and first.created and not again.created
    conn.write(
        stream, {"cislo": "FV2", "castka": 200}, external_id=None, idempotency_key="evt-2:export"
    )
    records = FileConnector(conn.config).read_page(stream, since=None, page_token=None).records
    assert [str(r["cislo"]) for r in records] == ["FV1", "FV2"]
    assert all("_idempotency_key" not in r for r in records)


def test_broken_jsonl_line_is_passed_on_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "kontakty.jsonl").write_text('{"id": 1}\n{broken\n{"id": 3}\n')
    conn = FileConnector({"path": str(tmp_path)})
    records = conn.read_page(conn.stream("kontakty"), since=None, page_token=None).records
    assert len(records) == 3 and "_error" in records[1]


def test_webhook_signature(tmp_path: Path) -> None:
    conn = FileConnector({"path": str(tmp_path), "webhook_secret": "s3cret"})
    body = json.dumps({"event_id": "e1", "stream": "firmy", "id": "7", "version": "2"}).encode()
    events = conn.verify_webhook({"X-Spojka-Signature": sign_payload("s3cret", body)}, body)
    assert events[0].external_id == "7" and events[0].version == "2"
    with pytest.raises(AuthError):
        conn.verify_webhook({"X-Spojka-Signature": sign_payload("wrong", body)}, body)
    with pytest.raises(AuthError):
        conn.verify_webhook({"X-Spojka-Signature": sign_payload("s3cret", body, timestamp=1)}, body)
    with pytest.raises(ValidationError):
        conn.verify_webhook({"X-Spojka-Signature": sign_payload("s3cret", b"{")}, b"{")


def test_http_status_classification() -> None:
    err = classify_status(429, headers={"Retry-After": "7"})
    assert isinstance(err, TransientError) and err.retry_after == 7
    assert isinstance(classify_status(503), TransientError)
    assert isinstance(classify_status(422), ValidationError)
    assert classify_status(201) is None


def test_a_delete_removes_the_row_once_and_a_repeat_says_it_was_gone(tmp_path: Path) -> None:
    _csv(tmp_path / "firmy.csv", 3)
    conn = FileConnector({"path": str(tmp_path), "delimiter": ";"})
    stream = conn.stream("firmy")
    first = conn.delete(stream, "1", idempotency_key="k")
    again = conn.delete(stream, "1", idempotency_key="k")
    assert (first.already_gone, again.already_gone) == (False, True)
    assert [r["id"] for r in conn.read_page(stream, since=None, page_token=None).records] == [
        "0",
        "2",
    ]
