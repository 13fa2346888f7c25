"""``POST /api/v1/webhooks/{connection}`` as plain ASGI: the receiver's hot path.

A busy system sends thousands of deliveries a second; FastAPI's routing, dependency
solving and response handling cost more than verifying and storing one of them. This
handler serves the common case — a known connection, a valid delivery, the plain ``202``
— ahead of the framework, with the same steps as the route in ``router.py``: verify (HMAC
and timestamp window), store durably through the group-commit writer, answer. The
request context middleware still gives it a trace id, the body-size limit and metrics.

Every other case (a connection not loaded yet, a forged, stale or malformed delivery, a
vendor's handshake) is handed to the full application with the body replayed, so those
answers stay exactly the route's own (RFC 9457 problems, handshake replies).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spojka.api.middleware import FastPath
from spojka.sync import router, webhooks

PREFIX = "/api/v1/webhooks/"


async def _body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _to_app(app: ASGIApp, scope: Scope, body: bytes, send: Send) -> None:
    """Let the full application answer, with the already-read body replayed."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    await app(scope, replay, send)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def receive_webhook(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
    connection = scope["path"][len(PREFIX) :]
    body = await _body(receive)
    if body is None:  # nobody to answer; nothing was stored
        return
    runtime = router.sync_engine(Request(scope))
    if not connection or "/" in connection:
        await _to_app(app, scope, body, send)
        return
    if connection not in runtime.engine.cached_connections():
        await _to_app(app, scope, body, send)  # loads the connection off the event loop
        return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        rows = webhooks.verify(
            engine=runtime.engine, connection=connection, headers=headers, body=body
        )
    except Exception:  # refused, or a handshake: the route answers it
        await _to_app(app, scope, body, send)
        return
    stored = await runtime.writer.stored(rows)
    runtime.worker.wake()
    duplicates = len(rows) - stored
    own = webhooks.accepted_reply(
        engine=runtime.engine, connection=connection, stored=stored, duplicates=duplicates
    )
    if own is not None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in own.headers.items()]
        await _answer(send, own.status, raw, own.body)
        return
    answer = json.dumps({"stored": stored, "duplicates": duplicates}, separators=(",", ":"))
    await _answer(send, 202, [(b"content-type", b"application/json")], answer.encode())


FAST_PATH = FastPath(
    method="POST",
    prefix=PREFIX,
    route="/api/v1/webhooks/{connection}",
    handle=receive_webhook,
)
