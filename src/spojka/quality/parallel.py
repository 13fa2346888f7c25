"""Normalise many distinct values on more than one core (forked worker processes).

Preparing a large table is pure Python string work, so threads would not help; the values
are split into contiguous parts, one per worker, and the calling process works on the first
part while forked workers do the rest. The result is the same as a plain loop in one
process, value for value and in order.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from spojka.core.logging import get_logger

log = get_logger(__name__)

#: below this many values in all, starting a worker costs more than it saves
PARALLEL_MIN_VALUES = 20_000
#: more workers than this split the values too finely to pay for the transfers
MAX_WORKERS = 4

Job = tuple[Callable[[str], Any], Sequence[str]]


def default_workers() -> int:
    """Cores this process may run on, at most ``MAX_WORKERS``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _run(jobs: Sequence[Job]) -> list[list[Any]]:
    return [[prepare(value) for value in values] for prepare, values in jobs]


#: the jobs of the running ``map_distinct``: forked workers inherit them, nothing is pickled
_shared: tuple[Sequence[Job], int] = ((), 1)


def _part(jobs: Sequence[Job], k: int, workers: int) -> list[Job]:
    return [
        (prepare, values[k * len(values) // workers : (k + 1) * len(values) // workers])
        for prepare, values in jobs
    ]


def _run_shared_part(k: int) -> list[list[Any]]:
    jobs, workers = _shared
    return _run(_part(jobs, k, workers))


def _can_fork() -> bool:
    # forking a process that runs other threads can copy a held lock into the child
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def map_distinct(jobs: Sequence[Job], workers: int) -> list[list[Any]]:
    """``[[f(v) for v in values] for f, values in jobs]``, spread over ``workers`` processes.

    Falls back to this process alone for small inputs, one worker, or when forking is not
    safe here (other threads running).
    """
    total = sum(len(values) for _, values in jobs)
    if workers <= 1 or total < PARALLEL_MIN_VALUES or not _can_fork():
        return _run(jobs)

    global _shared
    _shared = (jobs, workers)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers - 1, mp_context=context) as pool:
            futures = [pool.submit(_run_shared_part, k) for k in range(1, workers)]
            first = _run(_part(jobs, 0, workers))
            try:
                parts = [first, *(future.result() for future in futures)]
            except BrokenProcessPool:  # a worker died (killed, out of memory): do its share here
                log.warning("quality.parallel.worker_lost", workers=workers)
                parts = [first, *(_run(_part(jobs, k, workers)) for k in range(1, workers))]
    finally:
        _shared = ((), 1)
    return [[value for done in parts for value in done[j]] for j in range(len(jobs))]
