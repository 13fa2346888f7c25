"""Helpers shared by tests (not fixtures): running the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def cli_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a user running ``spojka`` against one instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOJKA_")}
    env["SPOJKA_DATA_DIR"] = str(data_dir)
    if database_url:
        env["SPOJKA_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def spojka_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spojka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read_all(connector: Any, stream: Any, since: str | None = None) -> list[Any]:
    """Every record of one stream, paged the way the sync engine pages it."""
    records: list[Any] = []
    token: str | None = None
    while True:
        page = connector.read_page(stream, since=since, page_token=token)
        records.extend(page.records)
        if page.next_token is None:
            return records
        token = page.next_token
