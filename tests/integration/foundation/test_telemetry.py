"""With an OTLP endpoint configured, request spans reach it under the caller's trace id."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from fastapi.testclient import TestClient

from spojka.api.app import create_app
from spojka.bootstrap import Spojka
from spojka.core import telemetry


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_are_exported_with_the_incoming_trace_id(spojka_app: Spojka):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spojka_app.settings.otlp_endpoint = f"http://127.0.0.1:{server.server_port}"
        trace = "0af7651916cd43dd8448eb211c80319c"
        with TestClient(create_app(spojka_app)) as client:
            response = client.get(
                "/health", headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"}
            )
        assert response.headers["x-trace-id"] == trace
        telemetry.flush()
        paths = {path for path, _ in _Collector.received}
        assert paths == {"/v1/traces"}
        assert any(bytes.fromhex(trace) in body for _, body in _Collector.received)
    finally:
        telemetry.reset()
        server.shutdown()
