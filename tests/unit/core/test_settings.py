from pathlib import Path

import pytest

from spojka.core.errors import ConfigError
from spojka.core.settings import load_settings


def test_defaults_put_sqlite_in_the_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPOJKA_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'spojka.sqlite'}"
    assert settings.profile == "dev"


def test_a_wrong_value_names_the_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPOJKA_PORT", "eighty")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "SPOJKA_PORT" in err.value.message
    assert "\n" not in err.value.message


def test_an_unknown_profile_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPOJKA_PROFILE", "staging")
    with pytest.raises(ConfigError, match="SPOJKA_PROFILE"):
        load_settings()


def test_an_unsupported_database_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPOJKA_DATABASE_URL", "mysql://root@localhost/x")
    with pytest.raises(ConfigError, match="SPOJKA_DATABASE_URL"):
        load_settings()


def test_plain_postgresql_urls_get_the_psycopg_driver(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPOJKA_DATABASE_URL", "postgresql://postgres@127.0.0.1/x")
    assert load_settings().resolved_database_url.startswith("postgresql+psycopg://")


def test_production_needs_an_explicit_secret_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPOJKA_PROFILE", "prod")
    monkeypatch.delenv("SPOJKA_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SPOJKA_SECRET_KEY"):
        load_settings()


def test_toml_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    config = tmp_path / "spojka.toml"
    config.write_text('port = 9001\nprofile = "pilot"\nsecret_key_file = "/tmp/k"\n')
    monkeypatch.setenv("SPOJKA_CONFIG", str(config))
    monkeypatch.setenv("SPOJKA_PROFILE", "test")
    settings = load_settings()
    assert settings.port == 9001
    assert settings.profile == "test"
