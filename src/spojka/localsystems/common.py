"""Plumbing shared by the local systems: cache folder, free ports, managed processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import httpx

from spojka.core.errors import TransientError


def cache_dir(name: str) -> Path:
    """Where installs and golden snapshots live; ``SPOJKA_SYSTEMS_CACHE`` overrides."""
    root = Path(
        os.environ.get("SPOJKA_SYSTEMS_CACHE", Path.home() / ".cache" / "spojka" / "systems")
    )
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str,
    *,
    timeout: float = 60.0,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``url`` until it answers (any status below 500) or fail with the process log."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise TransientError(f"process for {url} exited with {process.returncode}: {tail}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TransientError(f"{url} did not answer within {timeout:.0f}s ({last})")


@dataclass
class ManagedProcess:
    """A child server process in its own process group, with its output in a log file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self.process

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, for fault tests."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class LocalServer:
    """Stop, crash and restart for a running local system (mixed into its dataclass).

    ``owns_run_dir``: the folder was made by ``start()`` and goes away with the server.
    """

    url: str
    run_dir: Path
    process: ManagedProcess
    owns_run_dir: bool
    health_path: ClassVar[str] = ""
    restart_timeout: ClassVar[float] = 60.0

    def stop(self) -> None:
        """Stop the server; a run folder ``start()`` made itself is removed with it."""
        self.process.stop()
        if self.owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def kill(self) -> None:
        """Crash the server (fault tests: the system is down)."""
        self.process.kill()

    def restart(self) -> None:
        """Start the same server again on the same port and data."""
        self.process.stop()
        proc = self.process.start()
        wait_for_http(
            self.url + self.health_path,
            process=proc,
            log=self.process.log_path,
            timeout=self.restart_timeout,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_checked(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
) -> str:
    """Run an install/setup command; on failure raise with the tail of its output."""
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        out = (result.stdout + result.stderr)[-3000:]
        raise TransientError(f"command failed ({result.returncode}): {' '.join(argv)}\n{out}")
    return result.stdout


@contextlib.contextmanager
def exclusive_lock(path: Path, *, timeout: float = 1800.0) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` (installs and golden builds run once at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TransientError(f"timed out waiting for the lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def stop_on_sigterm() -> None:
    """Let ``kill`` (SIGTERM) stop a local server's ``main`` as cleanly as Ctrl+C does."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
