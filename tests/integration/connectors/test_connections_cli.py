"""`spojka connectors list` and `spojka connections test` as an administrator uses them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from spojka.localsystems import redmine
from tests.support import cli_env, spojka_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path / "data")
    assert spojka_cli("init", env=env).returncode == 0
    return env


def _connect(env: dict[str, str], name: str, kind: str, *options: str) -> None:
    args = ["sync", "connect", name, "--kind", kind]
    for option in options:
        args += ["--option", option]
    result = spojka_cli(*args, env=env)
    assert result.returncode == 0, result.stderr


def test_connectors_list_shows_every_installed_kind_with_capabilities(env: dict[str, str]):
    result = spojka_cli("connectors", "list", env=env)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }
    assert {"bottlecrm", "file", "mail", "redmine", "tryton"} <= set(rows)
    assert "Employee" in rows["tryton"] and "Invoice" in result.stdout


def test_a_system_that_is_down_is_named_with_the_reason(env: dict[str, str]):
    _connect(env, "pm", "redmine", "url=http://127.0.0.1:9", "api_key=abc")
    result = spojka_cli("connections", "test", "pm", env=env)
    assert result.returncode == 1
    assert "pm (redmine): failed" in result.stdout
    assert "127.0.0.1:9" in result.stdout or "refused" in result.stdout.lower()


def test_an_unknown_connection_is_a_clear_error(env: dict[str, str]):
    result = spojka_cli("connections", "test", "nope", env=env)
    assert result.returncode == 1
    assert "no connection 'nope'" in result.stderr


@pytest.fixture(scope="module")
def redmine_server() -> Iterator[redmine.RedmineServer]:
    server = redmine.start()
    yield server
    server.stop()


@pytest.mark.redmine
def test_redmine_key_rejected_and_accepted(env: dict[str, str], redmine_server):
    _connect(env, "pm-bad", "redmine", f"url={redmine_server.url}", "api_key=wrong-key")
    bad = spojka_cli("connections", "test", "pm-bad", env=env)
    assert bad.returncode == 1
    assert "401 from Redmine: API key rejected" in bad.stdout
    _connect(env, "pm", "redmine", f"url={redmine_server.url}", f"api_key={redmine_server.api_key}")
    good = spojka_cli("connections", "test", "pm", env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "pm (redmine): ok" in good.stdout


def test_inline_credentials_are_stored_encrypted_as_references(env: dict[str, str], tmp_path):
    _connect(
        env, "erp", "tryton", "url=http://127.0.0.1:9", "database=firma", "password=Tajné-heslo-123"
    )
    db = sqlite3.connect(tmp_path / "data" / "spojka.sqlite")
    try:
        stored = " ".join(str(row) for row in db.execute("SELECT * FROM sync_connection"))
        secrets = " ".join(str(row) for row in db.execute("SELECT * FROM secret"))
    finally:
        db.close()
    assert "Tajné-heslo-123" not in stored and "Tajné-heslo-123" not in secrets
    assert "db:connection/erp/password" in stored
    # The connector still gets the real value: the failure is about the system, not the key.
    result = spojka_cli("connections", "test", "erp", env=env)
    assert result.returncode == 1 and "erp (tryton): failed" in result.stdout
