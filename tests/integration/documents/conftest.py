"""Labelled documents generated per test session (nothing binary is committed), and a small
stand-in for a language model speaking the OpenAI chat-completions shape."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "documents"


def load(name: str) -> ModuleType:
    module_name = f"spojka_documents_testdata_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, DATA / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def docgen() -> ModuleType:
    return load("generate")


@pytest.fixture(scope="session")
def score() -> ModuleType:
    return load("score")


@pytest.fixture(scope="session")
def dev_corpus(docgen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return docgen.generate(tmp_path_factory.mktemp("dev"), split="dev", count=32, scans=0)


@pytest.fixture(scope="session")
def heldout_corpus(docgen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return docgen.generate(tmp_path_factory.mktemp("heldout"), split="heldout", count=32, scans=0)


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
