"""A real Redmine 5 for tests, benchmarks and the demo (Debian's package, SQLite, thin).

Installed with apt-get when missing. A golden SQLite database (migrated, default data, REST
API on, the admin's API key, the trackers and custom fields Spojka uses, a few Czech and
Slovak users) is built once under ``cache_dir("redmine")``; every :func:`start` copies it
into a run folder and starts thin on a free port.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from spojka.core.errors import ConfigError, TransientError
from spojka.localsystems.common import (
    LocalServer,
    ManagedProcess,
    cache_dir,
    exclusive_lock,
    free_port,
    run_checked,
    wait_for_http,
)

REDMINE_ROOT = Path("/usr/share/redmine")
APT_PACKAGES = ("redmine", "redmine-sqlite", "thin")
# Without this pin the package's post-install bundle step picks a Bundler it cannot use.
BUNDLER_VERSION = "2.3.15"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "Spojka-admin-5"
EFFORT_FIELD = "Odhad pracnosti (h)"
PRICE_FIELD = "Cena (Kč)"
KEY_FIELD = "Spojka ID"
TRACKERS = ("Task", "Change request")

# Run by ``rails runner`` on the migrated database. Prints one JSON line for Python.
SEED_RUBY = r"""
require 'json'
Setting.rest_api_enabled = '1'
Setting.default_language = 'en'
Setting.text_formatting = 'common_mark'
Setting.default_projects_modules = %w[issue_tracking time_tracking news documents files wiki
                                      repository boards calendar gantt]
Setting.login_required = '1'

admin = User.find_by_login('admin')
admin.password = ENV.fetch('SPOJKA_ADMIN_PASSWORD')
admin.password_confirmation = admin.password
admin.must_change_passwd = false
admin.firstname = 'Správce'
admin.lastname = 'Spojky'
admin.save!

new_status = IssueStatus.find_by(name: 'New') || IssueStatus.order(:position).first
feature = Tracker.find_by(name: 'Feature')
created = []
['Task', 'Change request'].each do |name|
  tracker = Tracker.find_by(name: name) || Tracker.new(name: name)
  tracker.default_status = new_status
  tracker.save!
  created << tracker
end
WorkflowRule.copy(feature, nil, created, nil)
Setting.default_projects_tracker_ids = Tracker.all.map { |t| t.id.to_s }

effort = IssueCustomField.find_by(name: ENV.fetch('SPOJKA_EFFORT_FIELD')) ||
         IssueCustomField.new(name: ENV.fetch('SPOJKA_EFFORT_FIELD'))
effort.field_format = 'float'
effort.is_for_all = true
effort.visible = true
effort.trackers = Tracker.all.to_a
effort.save!
price = IssueCustomField.find_by(name: ENV.fetch('SPOJKA_PRICE_FIELD')) ||
        IssueCustomField.new(name: ENV.fetch('SPOJKA_PRICE_FIELD'))
price.field_format = 'float'
price.is_for_all = true
price.visible = true
price.trackers = Tracker.all.to_a
price.save!

# Spojka's idempotency key on the records it creates: filterable, so a retried create finds
# the record the first attempt made instead of making a second one.
issue_key = IssueCustomField.find_by(name: ENV.fetch('SPOJKA_KEY_FIELD')) ||
            IssueCustomField.new(name: ENV.fetch('SPOJKA_KEY_FIELD'))
issue_key.field_format = 'string'
issue_key.is_for_all = true
issue_key.is_filter = true
issue_key.searchable = false
issue_key.visible = true
issue_key.trackers = Tracker.all.to_a
issue_key.save!
time_key = TimeEntryCustomField.find_by(name: ENV.fetch('SPOJKA_KEY_FIELD')) ||
           TimeEntryCustomField.new(name: ENV.fetch('SPOJKA_KEY_FIELD'))
time_key.field_format = 'string'
time_key.is_filter = true
time_key.visible = true
time_key.save!

people = [
  ['jnovakova', 'Jana', 'Nováková', 'jana.novakova@example.cz'],
  ['pdvorak', 'Petr', 'Dvořák', 'petr.dvorak@example.cz'],
  ['mkovacova', 'Mária', 'Kováčová', 'maria.kovacova@example.sk'],
]
people.each do |login, first, last, mail|
  next if User.find_by_login(login)
  user = User.new(firstname: first, lastname: last, mail: mail, language: 'cs')
  user.login = login
  user.password = SecureRandom.hex(16)
  user.password_confirmation = user.password
  user.save!
end

puts JSON.generate(
  api_key: admin.api_key,
  trackers: Tracker.all.map { |t| [t.name, t.id] }.to_h,
  custom_fields: IssueCustomField.all.map { |f| [f.name, f.id] }.to_h,
  time_entry_custom_fields: TimeEntryCustomField.all.map { |f| [f.name, f.id] }.to_h,
  statuses: IssueStatus.all.map { |s| [s.name, s.id] }.to_h,
  roles: Role.givable.map { |r| [r.name, r.id] }.to_h,
  activities: TimeEntryActivity.all.map { |a| [a.name, a.id] }.to_h,
  users: User.where(type: 'User').map { |u| [u.login, u.id] }.to_h
)
"""


def home() -> Path:
    return cache_dir("redmine")


def _env(database: Path | None = None) -> dict[str, str]:
    env = {
        "RAILS_ENV": "production",
        "BUNDLER_VERSION": BUNDLER_VERSION,
        "DEBIAN_FRONTEND": "noninteractive",
        "RAILS_LOG_TO_STDOUT": "1",
    }
    if database is not None:
        env["DATABASE_URL"] = f"sqlite3:{database}"
    return env


def _installed() -> bool:
    return (REDMINE_ROOT / "config.ru").exists() and shutil.which("thin") is not None


def ensure_installed() -> None:
    """apt-get install Debian's redmine, its SQLite adapter and thin when missing."""
    if _installed():
        return
    if shutil.which("apt-get") is None:
        raise ConfigError("Redmine needs Debian's packages (apt-get not found on this machine)")
    with exclusive_lock(home() / "install.lock"):
        if _installed():
            return
        started = time.monotonic()
        env = _env()
        prefix = [] if os.geteuid() == 0 else ["sudo", "-E"]
        # Other fixtures (mail, OCR…) may run apt-get at the same moment: wait for its lock.
        apt = [*prefix, "apt-get", "-o", "DPkg::Lock::Timeout=900"]
        _apt_with_retry([*apt, "update"], env)
        _apt_with_retry([*apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES], env)
        (home() / "install-seconds.txt").write_text(f"{time.monotonic() - started:.1f}\n")


def _apt_with_retry(argv: list[str], env: dict[str, str], attempts: int = 5) -> None:
    """apt-get, retried while another apt/dpkg process holds a lock it does not wait for."""
    for attempt in range(1, attempts + 1):
        try:
            run_checked(argv, env=env)
            return
        except TransientError as exc:
            if "Could not get lock" not in exc.message or attempt == attempts:
                raise
            time.sleep(10 * attempt)


def _fingerprint() -> str:
    version = (REDMINE_ROOT / "lib" / "redmine" / "version.rb").read_bytes()
    payload = json.dumps([SEED_RUBY, ADMIN_PASSWORD, EFFORT_FIELD, PRICE_FIELD, KEY_FIELD]).encode()
    return hashlib.sha256(version + payload).hexdigest()[:16]


def _golden_dir() -> Path:
    return home() / "golden"


@dataclass(frozen=True)
class GoldenRedmine:
    database: Path
    api_key: str
    ids: dict[str, dict[str, int]]


def golden_database() -> GoldenRedmine:
    """The golden SQLite file and what the seed created (built once: ~30 s)."""
    ensure_installed()
    target = _golden_dir() / "redmine.sqlite"
    facts = _golden_dir() / "facts.json"
    marker = _golden_dir() / ".spojka-golden"

    def ready() -> bool:
        return marker.exists() and marker.read_text() == _fingerprint() and target.exists()

    if not ready():
        with exclusive_lock(home() / "golden.lock"):
            if not ready():
                _build_golden(target, facts, marker)
    data = json.loads(facts.read_text())
    api_key = data.pop("api_key")
    return GoldenRedmine(database=target, api_key=api_key, ids=data)


def _build_golden(target: Path, facts: Path, marker: Path) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=home(), prefix="build-") as tmp:
        database = Path(tmp) / "redmine.sqlite"
        env = _env(database)
        bundle = ["bundle", "exec"]
        run_checked(
            [*bundle, "rake", "db:migrate"], env={**env, "SCHEMA": "/dev/null"}, cwd=REDMINE_ROOT
        )
        run_checked(
            [*bundle, "rake", "redmine:load_default_data"],
            env={**env, "REDMINE_LANG": "en"},
            cwd=REDMINE_ROOT,
        )
        seed = Path(tmp) / "seed.rb"
        seed.write_text(SEED_RUBY)
        out = run_checked(
            [*bundle, "rails", "runner", str(seed)],
            env={
                **env,
                "SPOJKA_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "SPOJKA_EFFORT_FIELD": EFFORT_FIELD,
                "SPOJKA_PRICE_FIELD": PRICE_FIELD,
                "SPOJKA_KEY_FIELD": KEY_FIELD,
            },
            cwd=REDMINE_ROOT,
        )
        line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
        json.loads(line)
        if _golden_dir().exists():
            shutil.rmtree(_golden_dir())
        _golden_dir().mkdir(parents=True)
        shutil.copy2(database, target)
        facts.write_text(line)
    (home() / "golden-seconds.txt").write_text(f"{time.monotonic() - started:.1f}\n")
    marker.write_text(_fingerprint())


@dataclass
class RedmineServer(LocalServer):
    """A running Redmine (thin) on a copy of the golden database."""

    health_path: ClassVar[str] = "/"
    restart_timeout: ClassVar[float] = 120.0

    url: str
    api_key: str
    user: str
    password: str
    ids: dict[str, dict[str, int]]
    run_dir: Path
    port: int
    process: ManagedProcess = field(repr=False)
    owns_run_dir: bool = False


def start(run_dir: Path | None = None) -> RedmineServer:
    """Copy the golden database into ``run_dir`` and start thin on a free port."""
    golden = golden_database()
    folder = run_dir or Path(tempfile.mkdtemp(prefix="redmine-run-", dir=home()))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "redmine.sqlite"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copy2(golden.database, database)
    port = free_port()
    process = ManagedProcess(
        argv=[
            "bundle",
            "exec",
            "thin",
            "start",
            "-R",
            "config.ru",
            "-e",
            "production",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-P",
            str(folder / "thin.pid"),
        ],
        log_path=folder / "redmine.log",
        env=_env(database),
        cwd=REDMINE_ROOT,
    )
    proc = process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/", process=proc, log=process.log_path, timeout=120)
    except Exception:
        process.stop()
        raise
    return RedmineServer(
        url=url,
        api_key=golden.api_key,
        user=ADMIN_LOGIN,
        password=ADMIN_PASSWORD,
        ids=golden.ids,
        run_dir=folder,
        port=port,
        process=process,
        owns_run_dir=run_dir is None,
    )
