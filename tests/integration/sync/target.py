"""A small HTTP system for the engine's tests, and the connector that talks to it.

The server keeps records per stream, gives each change a growing version number (a change
counter, like many APIs' ``updated`` sequence), honours ``Idempotency-Key`` like Stripe-style
APIs do, can be switched to answer 503 (down) and rejects names containing ``POISON`` with
422. ``GET /<stream>/<id>`` reads one record (id-only webhooks are completed with it); its
reads can be made to fail for a while (503) or for good (410). It runs in a thread of the
test process; workers run in other processes.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from spojka.connectors import registry
from spojka.connectors.base import (
    Connector,
    Health,
    Page,
    Stream,
    WebhookEvent,
    WriteResult,
    parse_generic_events,
    raise_for_status,
    transport_errors,
    verify_hmac_signature,
)


class TargetState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.seq = 0
        self.idempotent: dict[str, tuple[str, int]] = {}
        self.creates: Counter[str] = Counter()  # per idempotency key: real creations
        self.writes = 0  # successful writes (create or update) that changed something
        self.replayed = 0  # requests answered from the idempotency store
        self.down = False
        self.failed = 0
        self.reads_down = 0  # reads by id answer 503 this many more times
        self.gone: set[str] = set()  # ids whose read answers 410 (a permanent refusal)
        self.reads: Counter[str] = Counter()  # reads by id per record id

    def all(self, stream: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: dict(v) for k, v in self.records.get(stream, {}).items()}

    def add(self, stream: str, record_id: str, **fields: Any) -> int:
        """A user creates a record in the system's own UI; returns its version."""
        with self.lock:
            self.seq += 1
            table = self.records.setdefault(stream, {})
            table[record_id] = {**fields, "id": record_id, "version": self.seq}
            return self.seq

    def edit(self, stream: str, record_id: str, **changes: Any) -> int:
        """A user edits a record in the system's own UI."""
        with self.lock:
            self.seq += 1
            record = self.records[stream][record_id]
            record.update(changes, version=self.seq)
            return self.seq


def _handler(state: TargetState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> dict[str, Any] | None:
            """The JSON body, or None when the client died before sending all of it."""
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if len(raw) < length:
                return None
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return None
            return body if isinstance(body, dict) else None

        def _read_one(self, stream: str, record_id: str) -> None:
            with state.lock:
                state.reads[record_id] += 1
                if state.down or state.reads_down > 0:
                    state.reads_down = max(0, state.reads_down - 1)
                    state.failed += 1
                    self._send(503, {"error": "maintenance"}, {"Retry-After": "0"})
                    return
                if record_id in state.gone:
                    self._send(410, {"error": "record no longer shared"})
                    return
                record = state.records.get(stream, {}).get(record_id)
            if record is None:
                self._send(404, {"error": "no such record"})
            else:
                self._send(200, dict(record))

        def do_GET(self) -> None:
            url = urlparse(self.path)
            stream, _, record_id = url.path.strip("/").partition("/")
            if record_id:
                self._read_one(stream, record_id)
                return
            query = parse_qs(url.query)
            since = int(query.get("since", ["0"])[0] or 0)
            offset = int(query.get("offset", ["0"])[0] or 0)
            limit = int(query.get("limit", ["100"])[0])
            with state.lock:
                rows = sorted(
                    (
                        dict(r)
                        for r in state.records.get(stream, {}).values()
                        if r["version"] >= since
                    ),
                    key=lambda r: r["version"],
                )
            page = rows[offset : offset + limit]
            nxt = offset + limit if offset + limit < len(rows) else None
            self._send(200, {"records": page, "next": nxt})

        def _write(self, stream: str, record_id: str | None) -> None:
            body = self._body()
            if body is None:
                self.close_connection = True
                return
            key = self.headers.get("Idempotency-Key")
            with state.lock:
                if state.down:
                    state.failed += 1
                    self._send(503, {"error": "maintenance"}, {"Retry-After": "0"})
                    return
                if key and key in state.idempotent:
                    state.replayed += 1
                    rid, version = state.idempotent[key]
                    self._send(200, {"id": rid, "version": version})
                    return
                if "POISON" in str(body.get("name", "")):
                    self._send(422, {"errors": {"name": ["not allowed"]}})
                    return
                table = state.records.setdefault(stream, {})
                state.seq += 1
                if record_id is None:
                    record_id = str(len(table) + 1)
                    if key:
                        state.creates[key] += 1
                    status = 201
                else:
                    if record_id not in table:
                        self._send(404, {"error": "no such record"})
                        return
                    status = 200
                table[record_id] = {
                    **table.get(record_id, {}),
                    **body,
                    "id": record_id,
                    "version": state.seq,
                }
                state.writes += 1
                if key:
                    state.idempotent[key] = (record_id, state.seq)
                self._send(status, {"id": record_id, "version": state.seq})

        def do_POST(self) -> None:
            self._write(urlparse(self.path).path.strip("/"), None)

        def do_PUT(self) -> None:
            stream, _, record_id = urlparse(self.path).path.strip("/").partition("/")
            self._write(stream, record_id)

    return Handler


class TargetServer:
    def __init__(self) -> None:
        self.state = TargetState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> TargetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class HttpTargetConnector(Connector):
    """Connector for :class:`TargetServer` (config: base_url, streams {name: entity})."""

    kind = "test-http"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        # TCP_NODELAY: without it every small request waits for a delayed ACK on loopback
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self.client = httpx.Client(
            base_url=self.config["base_url"], timeout=30, transport=transport
        )

    def streams(self) -> Sequence[Stream]:
        return [
            Stream(
                name=name,
                entity=entity,
                cursor_field="version",
                cursor_type="int",
                page_size=int(self.config.get("page_size", 100)),
            )
            for name, entity in self.config["streams"].items()
        ]

    def read_page(self, stream: Stream, *, since: str | None, page_token: str | None) -> Page:
        with transport_errors("target"):
            r = self.client.get(
                f"/{stream.name}",
                params={"since": since or 0, "offset": page_token or 0, "limit": stream.page_size},
            )
        raise_for_status(r, system="target")
        body = r.json()
        nxt = body["next"]
        return Page(records=body["records"], next_token=None if nxt is None else str(nxt))

    def read_one(self, stream: Stream, external_id: str) -> dict[str, Any] | None:
        with transport_errors("target"):
            r = self.client.get(f"/{stream.name}/{external_id}")
        if r.status_code == 404:
            return None
        raise_for_status(r, system="target")
        record: dict[str, Any] = r.json()
        return record

    def list_ids(self, stream: Stream) -> Iterable[str]:
        token: str | None = None
        while True:
            page = self.read_page(stream, since=None, page_token=token)
            yield from (str(r["id"]) for r in page.records)
            if page.next_token is None:
                return
            token = page.next_token

    def write(
        self,
        stream: Stream,
        record: Mapping[str, Any],
        *,
        external_id: str | None,
        idempotency_key: str,
    ) -> WriteResult:
        headers = {"Idempotency-Key": idempotency_key}
        with transport_errors("target"):
            if external_id is None:
                r = self.client.post(f"/{stream.name}", json=dict(record), headers=headers)
            else:
                r = self.client.put(
                    f"/{stream.name}/{external_id}", json=dict(record), headers=headers
                )
        raise_for_status(r, system="target")
        body = r.json()
        return WriteResult(
            external_id=str(body["id"]), version=str(body["version"]), created=r.status_code == 201
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        lower = {k.lower(): v for k, v in headers.items()}
        verify_hmac_signature(self.config["webhook_secret"], lower.get("x-spojka-signature"), body)
        return parse_generic_events(body)

    def health(self) -> Health:
        try:
            self.client.get("/accounts", params={"limit": 1})
        except httpx.HTTPError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True)

    def close(self) -> None:
        self.client.close()


def register() -> None:
    registry.register("test-http", HttpTargetConnector)
