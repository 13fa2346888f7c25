"""The CLI as a user meets it: clear one-line errors, tokens, two instances side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import cli_env, spojka_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path / "data")
    assert spojka_cli("init", env=env).returncode == 0
    return env


def test_token_create_prints_the_token_alone_on_the_last_line(env: dict[str, str]):
    result = spojka_cli("token", "create", "--role", "viewer", "--name", "Jana", env=env)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("spk_") and " " not in last


def test_unknown_role_and_duplicate_name_are_clear_errors(env: dict[str, str]):
    bad_role = spojka_cli("token", "create", "--role", "boss", "--name", "x", env=env)
    assert bad_role.returncode == 2 and "boss" in bad_role.stderr
    spojka_cli("token", "create", "--role", "viewer", "--name", "dup", env=env)
    dup = spojka_cli("token", "create", "--role", "viewer", "--name", "dup", env=env)
    assert dup.returncode == 1
    assert dup.stderr.strip() == "error: a token named 'dup' already exists"


def test_unknown_option_is_a_usage_error(env: dict[str, str]):
    result = spojka_cli("status", "--colour", env=env)
    assert result.returncode == 2
    assert "No such option" in result.stderr and "--colour" in result.stderr


def test_wrong_setting_stops_with_one_line_naming_it(tmp_path: Path):
    result = spojka_cli("status", env=cli_env(tmp_path / "d", SPOJKA_PORT="eighty"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "SPOJKA_PORT" in result.stderr and "Traceback" not in result.stderr


def test_database_down_at_start_up_is_one_clear_line_and_writes_nothing(tmp_path: Path):
    env = cli_env(tmp_path / "d", "postgresql+psycopg://postgres@127.0.0.1:1/spojka")
    result = spojka_cli("init", env=env)
    assert result.returncode == 1
    assert "is not reachable" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d" / "secret.key").exists()


def test_debug_shows_the_traceback(tmp_path: Path):
    env = cli_env(tmp_path / "d", "postgresql+psycopg://postgres@127.0.0.1:1/spojka")
    result = spojka_cli("--debug", "status", env=env)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_an_uninitialised_instance_says_what_to_run(tmp_path: Path):
    result = spojka_cli("status", env=cli_env(tmp_path / "d"))
    assert result.returncode == 1
    assert "spojka db upgrade" in result.stderr or "spojka init" in result.stderr


def test_two_instances_side_by_side_are_independent(tmp_path: Path):
    first, second = cli_env(tmp_path / "one"), cli_env(tmp_path / "two")
    for env in (first, second):
        assert spojka_cli("init", env=env).returncode == 0
    spojka_cli("token", "create", "--role", "admin", "--name", "only-in-one", env=first)
    assert "only-in-one" in spojka_cli("token", "list", env=first).stdout
    assert "only-in-one" not in spojka_cli("token", "list", env=second).stdout
    assert (tmp_path / "one" / "spojka.sqlite").exists()
    assert (tmp_path / "two" / "spojka.sqlite").exists()


def test_demo_tells_the_story_and_exits(tmp_path: Path):
    env = cli_env(tmp_path / "demo")
    result = spojka_cli("demo", "--no-serve", env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "approved by jana.novakova" in result.stdout
    assert "audit chain: intact" in result.stdout
    runs = spojka_cli("runs", "list", "--json", env=env)
    outcomes = sorted(
        line.split('"outcome":"')[1].split('"')[0]
        for line in runs.stdout.splitlines()
        if '"flow":"demo.' in line
    )
    assert outcomes == ["approved", "automated", "rejected"]
    assert spojka_cli("audit", "verify", env=env).returncode == 0
