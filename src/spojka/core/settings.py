"""Settings from the environment (prefix ``SPOJKA_``) and an optional ``spojka.toml``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from spojka.core.errors import ConfigError

Profile = Literal["dev", "test", "pilot", "prod"]


def _toml_path() -> Path:
    return Path(os.environ.get("SPOJKA_CONFIG", "spojka.toml"))


class Settings(BaseSettings):
    """Everything Spojka reads at start-up. Two instances differ by data dir and database."""

    model_config = SettingsConfigDict(env_prefix="SPOJKA_", extra="ignore")

    profile: Profile = "dev"
    data_dir: Path = Path(".spojka")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in the data folder"
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key that encrypts secrets stored in the database"
    )
    secret_key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    otlp_endpoint: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_upload_bytes: int = Field(default=26_214_400, ge=1024)
    app_version: str = "spojka-0.1"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'spojka.sqlite').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def _explain(exc: PydanticValidationError) -> str:
    err = exc.errors()[0]
    name = "_".join(str(p) for p in err.get("loc", ())) or "?"
    return f"setting SPOJKA_{name.upper()} is invalid: {err.get('msg', 'invalid value')}"


def load_settings(**overrides: object) -> Settings:
    """Read settings; a wrong value raises ConfigError with one line naming the setting."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        raise ConfigError(_explain(exc)) from None
    if settings.profile in ("pilot", "prod") and not (
        settings.secret_key or settings.secret_key_file
    ):
        raise ConfigError(
            f"setting SPOJKA_SECRET_KEY (or SPOJKA_SECRET_KEY_FILE) is required "
            f"in profile {settings.profile!r}"
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
