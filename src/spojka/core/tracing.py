"""Trace ids: taken from W3C ``traceparent`` or created, carried in a context variable."""

from __future__ import annotations

import contextlib
import random
import re
import secrets
from collections.abc import Iterator
from contextvars import ContextVar

_TRACE_ID: ContextVar[str | None] = ContextVar("spojka_trace_id", default=None)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def new_trace_id() -> str:
    # An id, not a secret: the module PRNG (seeded from os.urandom, reseeded in forked
    # children) spares a getrandom() system call on every request.
    return f"{random.getrandbits(128) or 1:032x}"


def parse_traceparent(header: str | None) -> str | None:
    """Return the trace id of a valid ``traceparent`` header, else None."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if not match or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def current_trace_id() -> str | None:
    return _TRACE_ID.get()


def ensure_trace_id() -> str:
    trace_id = _TRACE_ID.get()
    if trace_id is None:
        trace_id = new_trace_id()
        _TRACE_ID.set(trace_id)
    return trace_id


@contextlib.contextmanager
def trace_context(trace_id: str | None) -> Iterator[str]:
    """Run a block under the given trace id (or a new one)."""
    token = _TRACE_ID.set(trace_id or new_trace_id())
    try:
        yield _TRACE_ID.get() or ""
    finally:
        _TRACE_ID.reset(token)


def traceparent() -> str:
    """A ``traceparent`` header value for an outgoing call under the current trace."""
    return f"00-{ensure_trace_id()}-{secrets.token_hex(8)}-01"


def outgoing_headers() -> dict[str, str]:
    return {"traceparent": traceparent()}
