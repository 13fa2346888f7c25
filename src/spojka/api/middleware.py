"""One pure-ASGI middleware: trace id, body-size limit, request metrics; and fast paths,
hot routes served as plain ASGI ahead of the framework's routing."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spojka.core import telemetry, tracing

HTTP_REQUESTS = Counter(
    "spojka_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "spojka_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def _problem_bytes(status: int, title: str, detail: str, code: str, path: str) -> bytes:
    body = {
        "type": f"urn:spojka:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
        "trace_id": tracing.current_trace_id(),
    }
    return json.dumps(body).encode()


class _TooLarge(Exception):
    pass


# Routes that take whole files (scans, PDFs) get the upload limit instead of the JSON one.
UPLOAD_PATHS = ("/api/v1/documents",)


@dataclass(frozen=True)
class FastPath:
    """A hot route answered by ``handle(scope, receive, send, app)`` instead of the framework
    (``app``: the rest of the stack, for the requests it hands on). It still runs under this
    middleware: trace id, body-size limit and metrics (labelled with ``route``)."""

    method: str
    prefix: str
    route: str
    handle: Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]]


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        fast_paths: Sequence[FastPath] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.fast_paths = tuple(fast_paths)

    def _fast_path(self, scope: Scope) -> FastPath | None:
        for fast in self.fast_paths:
            if scope.get("method") == fast.method and scope.get("path", "").startswith(fast.prefix):
                return fast
        return None

    def _bound(self, fast: FastPath) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await fast.handle(scope, receive, send, self.app)

        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope.get("path", "")
        limit = self.max_upload_bytes if path.startswith(UPLOAD_PATHS) else self.max_body_bytes
        trace_id = tracing.parse_traceparent(headers.get("traceparent"))
        start = time.perf_counter()
        status_holder = {"status": 500}
        fast = self._fast_path(scope)
        app = self.app if fast is None else self._bound(fast)
        with (
            telemetry.server_span(f"{scope.get('method')} {scope.get('path')}", headers) as span_id,
            tracing.trace_context(span_id or trace_id) as tid,
        ):
            declared = headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                await self._reject_too_large(scope, send, status_holder, limit)
            else:
                received = 0

                async def limited_receive() -> Message:
                    nonlocal received
                    message = await receive()
                    if message["type"] == "http.request":
                        received += len(message.get("body", b""))
                        if received > limit:
                            raise _TooLarge
                    return message

                async def send_with_trace(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        status_holder["status"] = message["status"]
                        message.setdefault("headers", [])
                        message["headers"] = [*message["headers"], (b"x-trace-id", tid.encode())]
                    await send(message)

                try:
                    await app(scope, limited_receive, send_with_trace)
                except _TooLarge:
                    await self._reject_too_large(scope, send, status_holder, limit)
        route = scope.get("route")
        route_path: str = (fast.route if fast else getattr(route, "path", None)) or "unmatched"
        method: str = scope.get("method", "")
        HTTP_REQUESTS.labels(method, route_path, str(status_holder["status"])).inc()
        HTTP_SECONDS.labels(method, route_path).observe(time.perf_counter() - start)

    async def _reject_too_large(
        self, scope: Scope, send: Send, holder: dict[str, Any], limit: int
    ) -> None:
        holder["status"] = 413
        uploads = limit == self.max_upload_bytes
        setting = "SPOJKA_MAX_UPLOAD_BYTES" if uploads else "SPOJKA_MAX_BODY_BYTES"
        body = _problem_bytes(
            413,
            "Request body too large",
            f"the body exceeds the limit of {limit} bytes ({setting})",
            "too_large",
            scope.get("path", ""),
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
