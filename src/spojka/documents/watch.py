"""A watched folder of supplier invoices (a scanner's or an accounting share's output).

Every file that appears in the folder is taken in (stored once by content hash, the AP run
started) and moved to ``processed/``; a file that cannot be read goes to ``failed/`` with a
``<name>.reason.txt`` beside it. A file still being written (modified within the last
``settle_seconds``), hidden files and partial downloads are left for the next scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spojka.bootstrap import Spojka
from spojka.core.errors import SpojkaError
from spojka.core.logging import get_logger
from spojka.documents.intake import take_in
from spojka.documents.mail_intake import INVOICE_SUFFIXES

log = get_logger("spojka.documents.watch")
PROCESSED = "processed"
FAILED = "failed"
_PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp")


@dataclass
class WatchedFile:
    name: str
    moved_to: Path
    document_id: int | None = None
    new_file: bool = False
    workflow_id: str | None = None
    error: str | None = None


@dataclass
class ScanResult:
    taken: list[WatchedFile] = field(default_factory=list)
    failed: list[WatchedFile] = field(default_factory=list)


def _free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, numbered when a file of that name is already there."""
    target = folder / name
    stem, suffix, n = target.stem, target.suffix, 1
    while target.exists():
        target = folder / f"{stem}.{n}{suffix}"
        n += 1
    return target


def _ready(path: Path, settle_seconds: float, now: float) -> bool:
    if not path.is_file() or path.name.startswith("."):
        return False
    if path.name.lower().endswith(_PARTIAL_SUFFIXES):
        return False
    return now - path.stat().st_mtime >= settle_seconds


def _fail(folder: Path, path: Path, reason: str) -> WatchedFile:
    failed_dir = folder / FAILED
    failed_dir.mkdir(exist_ok=True)
    target = _free_name(failed_dir, path.name)
    path.replace(target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("documents.watch_failed", file=path.name, reason=reason)
    return WatchedFile(name=path.name, moved_to=target, error=reason)


def scan(
    app: Spojka,
    folder: Path,
    *,
    start_flows: bool = True,
    settle_seconds: float = 2.0,
    actor: str = "watch",
) -> ScanResult:
    """Take in every ready file of ``folder`` once."""
    result = ScanResult()
    now = time.time()
    processed = folder / PROCESSED
    for path in sorted(folder.iterdir()):
        if not _ready(path, settle_seconds, now):
            continue
        if path.suffix.lower() not in INVOICE_SUFFIXES:
            result.failed.append(
                _fail(folder, path, f"{path.suffix or 'no'} extension is not an invoice file")
            )
            continue
        try:
            taken = take_in(app, path, actor=f"{actor}:{folder.name}"[:200], start_flow=start_flows)
        except SpojkaError as exc:
            result.failed.append(_fail(folder, path, exc.message))
            continue
        except Exception as exc:  # a damaged file must not stop the folder
            result.failed.append(_fail(folder, path, f"{type(exc).__name__}: {exc}"))
            continue
        processed.mkdir(exist_ok=True)
        target = _free_name(processed, path.name)
        path.replace(target)
        result.taken.append(
            WatchedFile(
                name=path.name,
                moved_to=target,
                document_id=taken.document_id,
                new_file=taken.result.new_file,
                workflow_id=taken.workflow_id,
            )
        )
    if result.taken or result.failed:
        log.info(
            "documents.watch_scan",
            folder=str(folder),
            taken=len(result.taken),
            failed=len(result.failed),
        )
    return result


def watch(
    app: Spojka,
    folder: Path,
    *,
    interval: float = 2.0,
    start_flows: bool = True,
    settle_seconds: float = 2.0,
    on_scan: Callable[[ScanResult], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Scan ``folder`` every ``interval`` seconds until ``stop()`` says so."""
    folder.mkdir(parents=True, exist_ok=True)
    while not stop():
        found = scan(app, folder, start_flows=start_flows, settle_seconds=settle_seconds)
        if on_scan is not None:
            on_scan(found)
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not stop():
            time.sleep(min(0.2, interval))
