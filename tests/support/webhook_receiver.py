"""A local HTTP server that plays a webhook receiver (records requests, answers a script), and
the webhook dispatcher and targets the dispatch tests send with."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from khook_core.dispatch.base import Target
from khook_core.dispatch.webhook import WebhookDispatcher
from tests.support.dispatch import fast_settings

SECRET = "webhook-signing-key"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, str, dict[str, str]]] = field(default_factory=deque)
    delay: float = 0.0
    """Seconds to wait, after recording a request, before answering it (a slow receiver)."""

    def answer(self, status: int, body: str = "", **headers: str) -> None:
        """Answer the next request with ``status`` (default: 200 ``ok``)."""
        self.script.append((status, body, headers))


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status, text, headers = (
                receiver.script.popleft() if receiver.script else (200, "ok", {})
            )
            if receiver.delay:
                time.sleep(receiver.delay)
            payload = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name="webhook-receiver",
        daemon=True,
    )
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/khook?token=abc"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def webhook(url: str, **options: Any) -> Target:
    return Target("webhook", url=url, options={"url": url, "headers": {}, **options})


@pytest.fixture
def dispatcher() -> Iterator[WebhookDispatcher]:
    """A webhook dispatcher whose environment holds ``SECRET`` and a receiver token."""
    made = WebhookDispatcher(
        fast_settings(), environ={"KHOOK_TEST_HMAC": SECRET, "RECEIVER_TOKEN": "tok-1"}
    )
    yield made
    made.close()
