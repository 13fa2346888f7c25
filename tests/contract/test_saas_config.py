"""A SaaS connection missing its credentials says exactly what lacks, before any request."""

from __future__ import annotations

import pytest

from spojka.connectors.registry import create

pytestmark = pytest.mark.contract


@pytest.mark.parametrize(
    ("kind", "config", "lacks"),
    [
        ("jira", {"url": "http://127.0.0.1:9"}, "email, api_token"),
        ("xero", {"url": "http://127.0.0.1:9", "tenant_id": "t"}, "client_id, client_secret"),
        ("asana", {"url": "http://127.0.0.1:9", "token": "x"}, "workspace"),
        ("apideck", {"url": "http://127.0.0.1:9", "api_key": "k"}, "app_id, consumer_id"),
    ],
)
def test_missing_credentials_are_named(kind: str, config: dict[str, str], lacks: str) -> None:
    connector = create(kind, config)
    assert connector.streams()  # the declaration needs no credentials
    health = connector.health()
    assert not health.ok
    assert health.detail == f"{kind}: connection lacks {lacks}"
