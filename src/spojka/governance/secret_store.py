"""Secrets by reference: ``env:NAME``, ``file:/path`` or ``db:NAME`` (Fernet-encrypted).

Configuration never holds a secret's value, only such a reference.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.orm import Session

from spojka.core.errors import ConfigError, NotFoundError, ValidationError
from spojka.core.settings import Settings
from spojka.governance.models import StoredSecret


def load_key(settings: Settings, *, create: bool = False) -> bytes:
    """The Fernet key: from SPOJKA_SECRET_KEY, SPOJKA_SECRET_KEY_FILE, or the data folder."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
    else:
        path = settings.secret_key_file or settings.data_dir / "secret.key"
        if not path.exists():
            if not create or settings.secret_key_file is not None:
                raise ConfigError(
                    f"setting SPOJKA_SECRET_KEY_FILE: key file {path} does not exist "
                    "(run `spojka init`)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(Fernet.generate_key())
            path.chmod(0o600)
        key = path.read_bytes().strip()
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ConfigError("setting SPOJKA_SECRET_KEY is not a valid Fernet key") from None
    return key


class SecretStore:
    """Encrypts secrets kept in the database; resolves references of any kind."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def put(self, session: Session, name: str, value: str) -> None:
        token = self._fernet.encrypt(value.encode()).decode()
        row = session.get(StoredSecret, name)
        if row is None:
            session.add(StoredSecret(name=name, ciphertext=token))
        else:
            row.ciphertext = token

    def get(self, session: Session, name: str) -> str:
        row = session.get(StoredSecret, name)
        if row is None:
            raise NotFoundError(f"secret {name!r} is not stored")
        try:
            return self._fernet.decrypt(row.ciphertext.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                f"secret {name!r} cannot be decrypted with the configured SPOJKA_SECRET_KEY"
            ) from None

    def resolve(self, session: Session, reference: str) -> str:
        kind, _, rest = reference.partition(":")
        if kind == "env":
            if rest not in os.environ:
                raise ConfigError(f"secret reference {reference!r}: variable {rest} is not set")
            return os.environ[rest]
        if kind == "file":
            path = Path(rest)
            if not path.is_file():
                raise ConfigError(f"secret reference {reference!r}: file does not exist")
            return path.read_text().strip()
        if kind == "db":
            return self.get(session, rest)
        raise ValidationError(
            f"secret reference {reference!r} must start with env:, file: or db: (never a value)"
        )


# Connection settings under these names are credentials: stored only as references.
SECRET_CONFIG_KEYS = frozenset(
    {
        "password",
        "api_key",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret",
        "webhook_secret",
        "api_token",
        "webhook_key",
        "imap_password",
        "smtp_password",
    }
)
REFERENCE_PREFIXES = ("env:", "file:", "db:")


def default_store() -> SecretStore:
    """The store of this process's instance, or one from the settings (CLI helpers, tests)."""
    from spojka.bootstrap import current
    from spojka.core.settings import load_settings

    try:
        return current().secrets
    except RuntimeError:
        return SecretStore(load_key(load_settings(), create=True))


def externalise_secrets(
    session: Session, store: SecretStore, *, owner: str, config: dict[str, object]
) -> dict[str, object]:
    """Move inline credentials into the encrypted store; the config keeps ``db:`` references."""
    result = dict(config)
    for key, value in config.items():
        if key in SECRET_CONFIG_KEYS and isinstance(value, str) and value:
            if value.startswith(REFERENCE_PREFIXES):
                continue
            name = f"{owner}/{key}"
            store.put(session, name, value)
            result[key] = f"db:{name}"
    return result


def resolve_secrets(
    session: Session, store: SecretStore, config: dict[str, object]
) -> dict[str, object]:
    """The config with every credential reference replaced by its value (for the connector)."""
    result = dict(config)
    for key, value in config.items():
        if (
            key in SECRET_CONFIG_KEYS
            and isinstance(value, str)
            and value.startswith(REFERENCE_PREFIXES)
        ):
            result[key] = store.resolve(session, value)
    return result
