"""The per-company YAML is checked at load and every mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from spojka.core.errors import ConfigError
from spojka.flows import config

pytestmark = pytest.mark.flows


def test_shipped_defaults_are_valid() -> None:
    cfg = config.parse(config.read_yaml(config.DEFAULTS))
    assert cfg.default_template in cfg.templates


def test_company_file_overrides_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    config.write(tmp_path, {"limits": {"change_request_approval_above": "10000"}})
    cfg = config.load(tmp_path)
    assert str(cfg.limits.change_request_approval_above) == "10000"
    assert "implementace" in cfg.templates


def test_mistakes_are_named_with_their_place() -> None:
    data = config.read_yaml(config.DEFAULTS)
    data["default_template"] = "neexistuje"
    with pytest.raises(ConfigError, match="default_template 'neexistuje'"):
        config.parse(data)
    data = config.read_yaml(config.DEFAULTS)
    data["templates"]["skoleni"]["milestones"][0]["share"] = "0.5"
    with pytest.raises(ConfigError, match=r"templates\.skoleni.*add up to 1"):
        config.parse(data)
    data = config.read_yaml(config.DEFAULTS)
    data["systems"] = {"redmine": {"url": "http://x", "token": "abc123"}}
    with pytest.raises(ConfigError, match="by reference"):
        config.parse(data)
    data = config.read_yaml(config.DEFAULTS)
    data["limits"]["unknown_limit"] = 1
    with pytest.raises(ConfigError, match="unknown_limit"):
        config.parse(data)


def test_broken_yaml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "flows.yaml"
    bad.write_text("templates: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.read_yaml(bad)
