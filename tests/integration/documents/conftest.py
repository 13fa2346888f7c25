"""Labelled documents generated per test session (the fixtures of tests/documents_support.py),
and a small stand-in for a language model speaking the OpenAI chat-completions shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.documents_support import dev_corpus, docgen, heldout_corpus, score  # noqa: F401


@dataclass
class FakeModel:
    """Answers every chat completion with ``content`` and records what it was asked."""

    content: str = "{}"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 1200, "completion_tokens": 40}
    )
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    model = FakeModel()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model.requests.append({"path": self.path, "headers": dict(self.headers), **body})
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": model.content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": model.usage,
            }
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    model.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
