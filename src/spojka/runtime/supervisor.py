"""Keeps N worker processes alive, each with a stable executor id.

A worker that dies is started again under the same id, and DBOS then recovers the
workflows that worker had left unfinished.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from spojka.core.logging import get_logger

log = get_logger("spojka.supervisor")


def worker_argv(executor_id: str) -> list[str]:
    return [sys.executable, "-m", "spojka", "worker", "--executor-id", executor_id]


def supervise(
    processes: int, *, stop: threading.Event | None = None, poll_seconds: float = 0.5
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``); restart any worker that exits."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    ids = [f"worker-{i}" for i in range(processes)]
    children: dict[str, subprocess.Popen[bytes]] = {}
    restarts: dict[str, list[float]] = {i: [] for i in ids}
    for executor_id in ids:
        children[executor_id] = subprocess.Popen(worker_argv(executor_id))
        log.info("worker started", executor_id=executor_id, pid=children[executor_id].pid)
    try:
        while not stop.wait(poll_seconds):
            for executor_id, child in list(children.items()):
                code = child.poll()
                if code is None:
                    continue
                now = time.monotonic()
                recent = [t for t in restarts[executor_id] if now - t < 60]
                # A worker that keeps dying at once gets a growing pause, not a hot loop.
                if len(recent) >= 3:
                    time.sleep(min(30.0, 2 ** (len(recent) - 2)))
                restarts[executor_id] = [*recent, now]
                children[executor_id] = subprocess.Popen(worker_argv(executor_id))
                log.warning(
                    "worker restarted",
                    executor_id=executor_id,
                    exit_code=code,
                    pid=children[executor_id].pid,
                )
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
