"""Secrets are stored encrypted and referenced, never kept as plain values."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from spojka.bootstrap import Spojka
from spojka.core.db import transaction
from spojka.core.errors import ConfigError, ValidationError
from spojka.governance.secret_store import SecretStore


def test_stored_secret_is_encrypted_and_resolves(spojka_app: Spojka):
    with transaction(spojka_app.sessions) as session:
        spojka_app.secrets.put(session, "redmine-api-key", "9f8e7d6c5b4a")
    with spojka_app.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT ciphertext FROM secret")).scalar_one()
    assert "9f8e7d6c5b4a" not in stored
    with transaction(spojka_app.sessions) as session:
        assert spojka_app.secrets.resolve(session, "db:redmine-api-key") == "9f8e7d6c5b4a"


def test_wrong_key_cannot_read_the_secret(spojka_app: Spojka):
    with transaction(spojka_app.sessions) as session:
        spojka_app.secrets.put(session, "tryton", "heslo")
        with pytest.raises(ConfigError, match="cannot be decrypted"):
            SecretStore(Fernet.generate_key()).get(session, "tryton")


def test_references_by_env_and_file_and_no_inline_values(
    spojka_app: Spojka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CRM_TOKEN", "from-env")
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    with transaction(spojka_app.sessions) as session:
        assert spojka_app.secrets.resolve(session, "env:CRM_TOKEN") == "from-env"
        assert spojka_app.secrets.resolve(session, f"file:{secret_file}") == "from-file"
        with pytest.raises(ValidationError, match="never a value"):
            spojka_app.secrets.resolve(session, "plain-password")
        with pytest.raises(ConfigError, match="MISSING_VAR"):
            spojka_app.secrets.resolve(session, "env:MISSING_VAR")
