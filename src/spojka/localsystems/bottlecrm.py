"""A real, local BottleCRM (``django-crm`` 1.35 from PyPI) for tests, benchmarks and the demo.

BottleCRM needs Python >= 3.12 while Spojka runs on 3.11, so it lives in its own venv under
``cache_dir("bottlecrm")``. The first use installs it (about a minute), migrates a golden
SQLite database once (about two minutes: 253 migrations) with an organisation, an admin, an
org-bound JWT and a personal access token, and keeps both. Every ``start()`` copies the golden
database into a fresh folder and runs uvicorn on a free port, so each test module gets a clean
CRM in a couple of seconds.

Run ``python -m spojka.localsystems.bottlecrm`` to prepare everything and serve one instance
until Ctrl+C (used by ``make demo``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spojka.core.errors import ConfigError, TransientError
from spojka.localsystems.common import (
    ManagedProcess,
    cache_dir,
    free_port,
    run_checked,
    stop_on_sigterm,
    wait_for_http,
)

BOTTLECRM_VERSION = "1.35.0"
MIN_PYTHON = (3, 12)
ADMIN_EMAIL = "spravce@spojka-demo.cz"
ORG_NAME = "Spojka Demo s.r.o."
SETTINGS_MODULE = "spojka_bottlecrm_settings"
#: Every event the local instance can emit; a webhook registered without a list gets these.
ALL_EVENTS: tuple[str, ...] = (
    "deal.created",
    "deal.updated",
    "deal.deleted",
    "deal.won",
    "deal.lost",
    "account.created",
    "account.updated",
    "account.deleted",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "lead.created",
    "lead.updated",
    "lead.deleted",
    "task.created",
    "task.updated",
    "task.deleted",
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
)

# The settings the local instance runs with. Kept here (not in the venv) so a change to it
# produces a new golden database: its hash is part of the golden folder's name.
SETTINGS_TEXT = '''\
"""Local BottleCRM for Spojka's tests and demo: SQLite, eager Celery, webhooks to loopback."""

import os
from datetime import timedelta

from crm.settings import *  # noqa: F401,F403
from crm.settings import SIMPLE_JWT

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SPOJKA_BOTTLECRM_DB"],
        "OPTIONS": {"timeout": 30},
    }
}
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
MEDIA_ROOT = os.environ["SPOJKA_BOTTLECRM_MEDIA"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# The golden database carries an org JWT; it must outlive the snapshot on a dev machine.
SIMPLE_JWT = {**SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(days=3650)}

# Test instances deliver webhooks to receivers on 127.0.0.1 and random ports. Production
# BottleCRM refuses both (SSRF guard); only this local settings module relaxes it.
import webhooks.ssrf as _ssrf  # noqa: E402


class _AnyPort:
    def __contains__(self, port):
        return True


_ssrf.is_blocked = lambda ip: False
_ssrf._allowed_ports = lambda: _AnyPort()
_ssrf._allowed_schemes = lambda: ("https", "http")
'''


def settings_digest() -> str:
    return hashlib.sha256(f"{BOTTLECRM_VERSION}\n{SETTINGS_TEXT}".encode()).hexdigest()[:12]


# --- interpreter -------------------------------------------------------------------------


def _python_version(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def python_candidates() -> list[str]:
    """Interpreters worth trying, most explicit first."""
    found: list[str] = []
    explicit = os.environ.get("SPOJKA_BOTTLECRM_PYTHON")
    if explicit:
        found.append(explicit)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions = sorted(
        (pyenv_root / "versions").glob("3.1[2-9]*/bin/python3.1[2-9]"),
        key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.parent.parent.name)[:3]),
    )
    # 3.12 first: the version BottleCRM's own CI runs on.
    found.extend(str(p) for p in versions)
    for name in ("python3.12", "python3.13", "python3.14", "python3"):
        path = shutil.which(name)
        if path:
            found.append(path)
    for path in ("/usr/bin/python3.12", "/usr/bin/python3.13", "/usr/bin/python3"):
        if Path(path).exists():
            found.append(path)
    return list(dict.fromkeys(found))


def find_python() -> str:
    """A Python >= 3.12 on this machine, or a ConfigError that says what to install."""
    tried = []
    for candidate in python_candidates():
        version = _python_version(candidate)
        tried.append(f"{candidate} ({'.'.join(map(str, version)) if version else 'not usable'})")
        if version is not None and version >= MIN_PYTHON:
            return candidate
    raise ConfigError(
        "BottleCRM (django-crm 1.35) needs Python >= 3.12 and none was found. "
        "Install one (e.g. `pyenv install 3.12` or `apt-get install python3.12`) "
        "or point SPOJKA_BOTTLECRM_PYTHON at it. Tried: " + (", ".join(tried) or "nothing")
    )


# --- install -----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (pytest-xdist workers, a demo next to tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def home() -> Path:
    return cache_dir("bottlecrm")


def venv_dir() -> Path:
    return home() / f"venv-{BOTTLECRM_VERSION}"


def _venv_bin(name: str) -> Path:
    return venv_dir() / "bin" / name


def _log(message: str) -> None:
    # Installs take minutes: say what is happening on stderr (pytest shows it with -s).
    print(f"[bottlecrm] {message}", file=sys.stderr, flush=True)


def ensure_installed() -> Path:
    """Install django-crm into its own venv once; return the venv folder. Idempotent."""
    venv = venv_dir()
    marker = venv / ".spojka-installed"
    if marker.exists():
        return venv
    with _locked(home() / "install.lock"):
        if marker.exists():
            return venv
        python = find_python()
        started = time.monotonic()
        _log(f"installing django-crm=={BOTTLECRM_VERSION} with {python} into {venv}")
        if venv.exists():
            shutil.rmtree(venv)  # a half-finished install from an interrupted run
        run_checked([python, "-m", "venv", str(venv)])
        run_checked(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"django-crm=={BOTTLECRM_VERSION}",
            ],
            timeout=1800,
        )
        marker.write_text(f"django-crm=={BOTTLECRM_VERSION}\n")
        _log(f"installed in {time.monotonic() - started:.0f}s")
    return venv


def _settings_dir() -> Path:
    folder = home() / f"settings-{settings_digest()}"
    target = folder / f"{SETTINGS_MODULE}.py"
    if not target.exists() or target.read_text() != SETTINGS_TEXT:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{SETTINGS_MODULE}.{os.getpid()}.tmp"
        tmp.write_text(SETTINGS_TEXT)
        tmp.replace(target)
    return folder


def _env(db_path: Path, workdir: Path, secret_key: str, *, debug: bool = False) -> dict[str, str]:
    return {
        "PYTHONPATH": str(_settings_dir()),
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "SPOJKA_BOTTLECRM_DB": str(db_path),
        "SPOJKA_BOTTLECRM_MEDIA": str(workdir / "media"),
        "SECRET_KEY": secret_key,
        "DEBUG": "true" if debug else "false",
        "ENV_TYPE": "dev",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# --- golden database ---------------------------------------------------------------------


@dataclass(frozen=True)
class Golden:
    """What the golden snapshot holds besides the database file."""

    folder: Path
    secret_key: str
    org_id: str
    org_token: str
    personal_token: str
    admin_email: str

    @property
    def database(self) -> Path:
        return self.folder / "crm.sqlite3"


# Bump when the golden database's contents (not its schema) change.
GOLDEN_SETUP_VERSION = 2
#: Custom fields every local instance has: Czech/Slovak company ids on accounts.
ACCOUNT_CUSTOM_FIELDS = (("ico", "IČO"), ("dic", "DIČ"))


def golden_dir() -> Path:
    return home() / f"golden-{settings_digest()}-v{GOLDEN_SETUP_VERSION}"


def _read_golden(folder: Path) -> Golden:
    data = json.loads((folder / "golden.json").read_text())
    return Golden(folder=folder, **data)


def ensure_golden() -> Golden:
    """Build the golden database once (install + migrate + org + tokens); reuse it after."""
    folder = golden_dir()
    if (folder / "golden.json").exists():
        return _read_golden(folder)
    ensure_installed()
    with _locked(home() / "golden.lock"):
        if (folder / "golden.json").exists():
            return _read_golden(folder)
        # Left behind by a build that was killed: nobody else builds while we hold the lock.
        for stale in home().glob("golden-build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        build = Path(tempfile.mkdtemp(prefix="golden-build-", dir=home()))
        try:
            _build_golden(build)
            if folder.exists():
                shutil.rmtree(folder)
            build.rename(folder)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
        _log(f"golden database ready in {time.monotonic() - started:.0f}s")
        return _read_golden(folder)


def _build_golden(build: Path) -> None:
    secret_key = secrets.token_urlsafe(48)
    db = build / "crm.sqlite3"
    env = _env(db, build, secret_key, debug=True)
    django_admin = str(_venv_bin("django-admin"))
    # The migrated-but-empty database is kept too: if a later step fails, the next attempt
    # skips the two-minute migration.
    migrated = home() / f"migrated-{settings_digest()}.sqlite3"
    if migrated.exists():
        shutil.copyfile(migrated, db)
    else:
        _log("migrating the golden database (about two minutes)")
        run_checked([django_admin, "migrate", "--noinput"], env=env, cwd=build, timeout=1800)
        shutil.copyfile(db, migrated.with_suffix(".tmp"))
        migrated.with_suffix(".tmp").replace(migrated)
    out = run_checked([django_admin, "devlogin", ADMIN_EMAIL, "--create"], env=env, cwd=build)
    match = re.search(r"access_token:\s*(\S+)", out)
    if match is None:
        raise TransientError("devlogin printed no access_token line")
    user_token = match.group(1)

    port = free_port()
    process = ManagedProcess(
        argv=_uvicorn_argv(port), log_path=build / "uvicorn.log", env=env, cwd=build
    )
    proc = process.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz/", timeout=90, process=proc, log=build / "uvicorn.log")
        with httpx.Client(base_url=base, timeout=60) as http:
            org = _ok(
                http.post(
                    "/api/org/",
                    json={"name": ORG_NAME},
                    headers={"Authorization": f"Bearer {user_token}"},
                ),
                "create organisation",
            )
            org_id = str(org.get("org", {}).get("id") or org.get("id") or org.get("org_id"))
            switched = _ok(
                http.post(
                    "/api/auth/switch-org/",
                    json={"org_id": org_id},
                    headers={"Authorization": f"Bearer {user_token}"},
                ),
                "switch organisation",
            )
            org_token = str(switched.get("access_token") or switched["access"])
            pat = _ok(
                http.post(
                    "/api/profile/tokens/",
                    json={"name": "spojka"},
                    headers={"Authorization": f"Bearer {org_token}"},
                ),
                "create personal token",
            )
            personal_token = _find_pat(pat)
            for key, label in ACCOUNT_CUSTOM_FIELDS:
                _ok(
                    http.post(
                        "/api/custom-fields/",
                        json={
                            "target_model": "Account",
                            "key": key,
                            "label": label,
                            "field_type": "text",
                            "is_filterable": True,
                        },
                        headers={"Authorization": f"Bearer {org_token}"},
                    ),
                    f"create custom field {key}",
                )
            # Prove both credentials work before the snapshot is kept.
            for token in (org_token, personal_token):
                _ok(
                    http.get("/api/accounts/", headers={"Authorization": f"Bearer {token}"}),
                    "check token",
                )
    finally:
        process.stop()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    (build / "golden.json").write_text(
        json.dumps(
            {
                "secret_key": secret_key,
                "org_id": org_id,
                "org_token": org_token,
                "personal_token": personal_token,
                "admin_email": ADMIN_EMAIL,
            },
            indent=2,
        )
    )


def _ok(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 400:
        raise TransientError(
            f"BottleCRM setup step '{what}' failed: {response.status_code} {response.text[:500]}"
        )
    body = response.json()
    if not isinstance(body, dict):
        raise TransientError(f"BottleCRM setup step '{what}' answered {body!r:.200}")
    return body


def _find_pat(body: dict[str, Any]) -> str:
    """The raw ``bcrm_pat_…`` token (shown once; ``token_prefix`` is only its start)."""
    token = body.get("token")
    if not isinstance(token, str) or not token.startswith("bcrm_pat_"):
        raise TransientError("creating a personal token answered no bcrm_pat_ token")
    return token


def _uvicorn_argv(port: int) -> list[str]:
    return [
        str(_venv_bin("uvicorn")),
        "crm.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


# --- running instances -------------------------------------------------------------------


@dataclass
class BottleCRMInstance:
    """A running BottleCRM on a copy of the golden database."""

    url: str
    org_id: str
    org_token: str
    personal_token: str
    admin_email: str
    workdir: Path
    process: ManagedProcess
    _keep: bool = field(default=False, repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def register_webhook(
        self, url: str, events: Sequence[str] = ALL_EVENTS, *, description: str = "spojka"
    ) -> tuple[str, str]:
        """Register a webhook endpoint (needs the org JWT); return ``(endpoint_id, secret)``."""
        response = httpx.post(
            f"{self.api_url}/webhooks/",
            json={"url": url, "events": list(events), "description": description},
            headers={"Authorization": f"Bearer {self.org_token}"},
            timeout=30,
        )
        body = _ok(response, "register webhook")
        data = body.get("webhook") if isinstance(body.get("webhook"), dict) else body
        assert isinstance(data, dict)
        return str(data["id"]), str(data["secret"])

    def is_running(self) -> bool:
        proc = self.process.process
        return proc is not None and proc.poll() is None

    def kill(self) -> None:
        """Crash the server (for "system down" tests); ``restart()`` brings it back."""
        self.process.kill()

    def restart(self) -> None:
        self.process.stop()
        proc = self.process.start()
        wait_for_http(f"{self.url}/healthz/", timeout=90, process=proc, log=self.process.log_path)

    def stop(self) -> None:
        self.process.stop()
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BottleCRMInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(*, workdir: Path | None = None, port: int | None = None) -> BottleCRMInstance:
    """Start a fresh BottleCRM (installing and building the golden DB on first use)."""
    golden = ensure_golden()
    keep = workdir is not None
    if workdir is None:
        instances = home() / "instances"
        instances.mkdir(exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="crm-", dir=instances))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "media").mkdir(exist_ok=True)
    db = workdir / "crm.sqlite3"
    shutil.copyfile(golden.database, db)
    port = port or free_port()
    env = _env(db, workdir, golden.secret_key)
    process = ManagedProcess(
        argv=_uvicorn_argv(port), log_path=workdir / "uvicorn.log", env=env, cwd=workdir
    )
    proc = process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz/", timeout=90, process=proc, log=workdir / "uvicorn.log")
    except BaseException:
        process.stop()
        raise
    return BottleCRMInstance(
        url=url,
        org_id=golden.org_id,
        org_token=golden.org_token,
        personal_token=golden.personal_token,
        admin_email=golden.admin_email,
        workdir=workdir,
        process=process,
        _keep=keep,
    )


# --- demo data -----------------------------------------------------------------------------


def _ico(base7: str) -> str:
    """An IČO with its mod-11 check digit (8 digits, as Czech and Slovak registers issue)."""
    total = sum(int(d) * w for d, w in zip(base7, range(8, 1, -1), strict=True))
    return base7 + str((11 - total % 11) % 10)


# A small Czech/Slovak customer base: (name, city, country, IČO base, DIČ prefix, contact).
DEMO_ACCOUNTS: tuple[tuple[str, str, str, str, str, tuple[str, str, str]], ...] = (
    (
        "Strojírny Žďár nad Sázavou a.s.",
        "Žďár nad Sázavou",
        "CZ",
        "2559664",
        "CZ",
        ("Jiří", "Šťastný", "jiri.stastny@strojirny-zdar.cz"),
    ),
    (
        "Pekárna U Dvořáků s.r.o.",
        "Brno",
        "CZ",
        "2718355",
        "CZ",
        ("Marie", "Dvořáková", "marie@pekarna-dvorak.cz"),
    ),
    (
        "Hydraulika Šumperk s.r.o.",
        "Šumperk",
        "CZ",
        "4536071",
        "CZ",
        ("Tomáš", "Růžička", "ruzicka@hydraulika-sumperk.cz"),
    ),
    (
        "Kovovýroba Košice s.r.o.",
        "Košice",
        "SK",
        "3603835",
        "SK20",
        ("Ľubomír", "Ďurčo", "durco@kovovyroba-ke.sk"),
    ),
    (
        "Mlyn Šaľa a.s.",
        "Šaľa",
        "SK",
        "3155291",
        "SK20",
        ("Zuzana", "Kováčová", "kovacova@mlyn-sala.sk"),
    ),
)
# (account index, deal name, stage, amount EUR, probability, close date)
DEMO_DEALS: tuple[tuple[int, str, str, str, int, str], ...] = (
    (0, "Modernizace lisovací linky", "NEGOTIATION", "184000", 70, "2026-12-18"),
    (0, "Servisní smlouva 2027", "PROPOSAL", "36000", 50, "2027-01-15"),
    (1, "Nové pece – provozovna Brno", "QUALIFICATION", "52000", 30, "2027-02-28"),
    (2, "Hydraulické agregáty pro Šumperk", "PROSPECTING", "21500", 10, "2027-03-31"),
    (3, "Robotické svařování – Košice", "NEGOTIATION", "97000", 80, "2026-12-31"),
    (4, "Dopravníky pre mlyn Šaľa", "PROPOSAL", "44300", 40, "2027-01-31"),
)


def seed_demo(instance: BottleCRMInstance) -> dict[str, list[str]]:
    """Fill a fresh instance with a small realistic customer base and an open pipeline.

    Deal amounts are in EUR: BottleCRM 1.35 offers no CZK among its deal currencies.
    """
    from spojka.connectors.bottlecrm.client import BottleCRMClient

    created: dict[str, list[str]] = {"accounts": [], "contacts": [], "opportunities": []}
    with BottleCRMClient(instance.url, instance.personal_token) as api:
        for name, city, country, base, dic_prefix, person in DEMO_ACCOUNTS:
            ico = _ico(base)
            dic = f"{dic_prefix}{ico}" if dic_prefix == "CZ" else f"{dic_prefix}{ico[:8]}"
            account_id = api.create(
                "accounts",
                {
                    "name": name,
                    "city": city,
                    "country": country,
                    "custom_fields": {"ico": ico, "dic": dic},
                },
            )
            created["accounts"].append(account_id)
            first, last, email = person
            created["contacts"].append(
                api.create(
                    "contacts",
                    {
                        "first_name": first,
                        "last_name": last,
                        "email": email,
                        "city": city,
                        "account": account_id,
                    },
                )
            )
        for index, deal, stage, amount, probability, close in DEMO_DEALS:
            created["opportunities"].append(
                api.create(
                    "opportunities",
                    {
                        "name": deal,
                        "account": created["accounts"][index],
                        "contacts": [created["contacts"][index]],
                        "stage": stage,
                        "amount": amount,
                        "currency": "EUR",
                        "probability": probability,
                        "closed_on": close,
                    },
                )
            )
    return created


def main() -> None:  # pragma: no cover - manual/demo entry point
    stop_on_sigterm()
    started = time.monotonic()
    instance = start()
    if "--seed" in sys.argv:
        seed_demo(instance)
    print(
        json.dumps(
            {
                "url": instance.url,
                "org_id": instance.org_id,
                "workdir": str(instance.workdir),
                "ready_after_s": round(time.monotonic() - started, 1),
            }
        ),
        flush=True,
    )
    print(f"tokens: see {golden_dir() / 'golden.json'}", flush=True)
    try:
        while instance.is_running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        instance.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
