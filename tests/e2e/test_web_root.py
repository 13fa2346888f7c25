"""The web root in a real browser: paste a token, see this instance's status.

Runs `spojka serve` as a user would (its own data folder, SQLite) and drives Debian's
Chromium headless through Playwright. The browser is the system one: `playwright install`
downloads a browser build from outside the package registries, so it is never used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from spojka.localsystems.common import free_port

pytestmark = [pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Instance:
    base_url: str
    viewer_token: str


def _spojka(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "spojka", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"spojka {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """`spojka init`, a viewer token, `spojka serve` on a free port; stopped afterwards."""
    data_dir = tmp_path_factory.mktemp("web-root")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOJKA_")}
    env.update(
        SPOJKA_DATA_DIR=str(data_dir),
        SPOJKA_CONFIG=str(data_dir / "spojka.toml"),
        SPOJKA_LOG_LEVEL="warning",
    )
    _spojka(["init"], env, data_dir)
    out = _spojka(["token", "create", "--role", "viewer", "--name", "web-e2e"], env, data_dir)
    token = out.strip().splitlines()[-1].strip()
    port = free_port()
    log = (data_dir / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "spojka", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=data_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                output = (data_dir / "serve.log").read_text()
                pytest.fail(
                    f"`spojka serve` exited with {server.returncode}:\n{output}", pytrace=False
                )
            try:
                if httpx.get(f"{base_url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`spojka serve` did not get ready on {base_url}", pytrace=False)
            time.sleep(0.2)
        yield Instance(base_url=base_url, viewer_token=token)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}); the browser tests need it. Install it with: "
            f"bash {REPO / 'scripts' / 'install-browser.sh'} (Debian's chromium package; "
            "never `playwright install`)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def _show_status(page: Any, base_url: str, token: str) -> str:
    page.goto(base_url + "/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    status = page.locator("#status")
    # The box starts with the hint to create a token; wait until the answer replaced it.
    status.filter(has_not_text="spojka token create").wait_for(timeout=15_000)
    text: str = status.inner_text()
    return text


def test_a_viewer_token_shows_the_instance_status(page: Any, instance: Instance) -> None:
    text = _show_status(page, instance.base_url, instance.viewer_token)

    shown = json.loads(text)
    assert shown["you"] == {"name": "web-e2e", "role": "viewer"}
    assert shown["database"] == "sqlite"
    assert shown["runtime"] == "running"


def test_a_wrong_token_shows_the_error(page: Any, instance: Instance) -> None:
    text = _show_status(page, instance.base_url, "spk_not_a_real_token")

    expected = httpx.get(
        instance.base_url + "/api/v1/status",
        headers={"Authorization": "Bearer spk_not_a_real_token"},
    ).json()["detail"]
    assert text.strip() == expected
    assert "token" in text.lower()
    assert "viewer" not in text
