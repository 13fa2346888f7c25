"""Find connectors by kind: the ``spojka.connectors`` entry-point group (plus in-process ones)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from spojka.connectors.base import Connector
from spojka.core.errors import ConfigError

ENTRY_POINT_GROUP = "spojka.connectors"
_registered: dict[str, type[Connector]] = {}


def register(kind: str, cls: type[Connector]) -> None:
    """Add a connector class without packaging it (embedding, tests of the engine)."""
    _registered[kind] = cls


def available() -> dict[str, str]:
    """kind → where it comes from, for ``spojka sync connectors``."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found.update({k: f"{c.__module__}:{c.__qualname__}" for k, c in _registered.items()})
    return found


def connector_class(kind: str) -> type[Connector]:
    if kind in _registered:
        return _registered[kind]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == kind:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                raise ConfigError(f"entry point {kind!r} ({ep.value}) is not a Connector")
            return cls
    known = ", ".join(sorted(available())) or "none installed"
    raise ConfigError(f"unknown connector kind {kind!r} (available: {known})")


def create(kind: str, config: Mapping[str, Any] | None = None) -> Connector:
    """Instantiate the connector of a kind with its connection config."""
    return connector_class(kind)(config)
