"""A real BottleCRM per test module, and a webhook receiver the tests start."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from spojka.connectors.bottlecrm.client import BottleCRMClient
from spojka.core.errors import ConfigError
from spojka.localsystems import bottlecrm
from spojka.localsystems.common import free_port


@pytest.fixture(scope="module")
def crm() -> Iterator[bottlecrm.BottleCRMInstance]:
    """A fresh BottleCRM on a copy of the golden database (installs it on first use)."""
    try:
        instance = bottlecrm.start()
    except ConfigError as exc:
        # Never a silent skip: a machine without Python >= 3.12 cannot run these tests.
        pytest.fail(f"BottleCRM cannot run here: {exc}", pytrace=False)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def client(crm: bottlecrm.BottleCRMInstance) -> Iterator[BottleCRMClient]:
    with BottleCRMClient(crm.url, crm.personal_token) as api:
        yield api


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A small HTTP server that records every POST it gets."""

    url: str
    deliveries: queue.Queue[Delivery] = field(default_factory=queue.Queue)

    def next_event(self, event: str, *, timeout: float = 30.0) -> Delivery:
        """The next delivery of ``event`` (others are skipped), or fail after ``timeout``."""
        while True:
            try:
                delivery = self.deliveries.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {event} webhook arrived within {timeout:.0f}s")
            if delivery.headers.get("x-bottlecrm-event") == event:
                return delivery


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    port = free_port()
    recorded: WebhookReceiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hooks/bottlecrm")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded.deliveries.put(Delivery(self.path, headers, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
