"""Slow, stalled and malformed clients against a real function server, as the local stack runs it.

Each function is served in a subprocess by ``khook_local.server`` (functions-framework's
app on gunicorn, with the self-hosted settings), and spoken to over raw sockets, because these
are faults no HTTP client library produces: headers and then silence, a body dripping in, a
header block too large, ``Expect: 100-continue`` with a body over the limit.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_local.functions import SERVER_MODULE
from tests.support.functions import FunctionServer
from tests.support.sources import TOKEN, write_config

STALLED_CLIENTS = 16
STARVED_BOUND_S = 5.0
"""A starved server answers only once a stalled client's body deadline (10 s by default) frees a
thread; a served one answers at once. Half the deadline tells the two apart on a busy machine."""
DRIP_DEADLINE_S = 1.0
GENERIC = json.dumps({"type": "deployment-failed", "resource": {"name": "web"}}).encode()
K8S_PUSH = json.dumps(
    {"message": {"data": "e30=", "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}
).encode()
FUNCTIONS = {
    "webhook": ("http", "/", GENERIC),
    "kubernetes": ("cloudevent", "/projects/p/topics/t", K8S_PUSH),
}


@pytest.fixture
def serve(
    function_server: Callable[..., FunctionServer], tmp_path: Path
) -> Callable[..., FunctionServer]:
    config = write_config(tmp_path / "config")

    def start(name: str, **env: str) -> FunctionServer:
        return function_server(
            name,
            {
                "KHOOK_CONFIG_DIR": str(config),
                "KHOOK_STATE": "memory",
                "KHOOK_DISPATCH": "dry-run",
                "KHOOK_LOG_FORMAT": "json",
                "KHOOK_WEBHOOK_TOKEN": TOKEN,
                **env,
            },
            FUNCTIONS[name][0],
            SERVER_MODULE,
        )

    return start


def head(path: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: localhost",
        f"Authorization: Bearer {TOKEN}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextlib.contextmanager
def connection(server: FunctionServer, timeout: float = 30.0) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (status, lower-case headers, body by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> Any:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["status"] == expected
    return document


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_stalled_clients_do_not_starve_a_function(
    serve: Callable[..., FunctionServer], name: str
) -> None:
    """16 clients send their headers and then nothing; a normal request is still answered."""
    server = serve(name)  # the default 10 s body deadline
    _, path, body = FUNCTIONS[name]
    with contextlib.ExitStack() as stack:
        for _ in range(STALLED_CLIENTS):
            stack.enter_context(connection(server)).sendall(head(path, 1000))
        time.sleep(0.5)  # every stalled request has reached a thread
        with connection(server) as sock:
            started = time.monotonic()
            sock.sendall(head(path, len(body), "Connection: close") + body)
            status, _, reply = read_response(sock)
            elapsed = time.monotonic() - started
    assert status == 200, reply
    assert elapsed < STARVED_BOUND_S


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_dripping_body_is_answered_408_in_json_at_the_deadline(
    serve: Callable[..., FunctionServer], name: str
) -> None:
    server = serve(name, KHOOK_BODY_READ_TIMEOUT=str(DRIP_DEADLINE_S))
    _, path, _ = FUNCTIONS[name]
    with connection(server, timeout=0.2) as sock:
        sock.sendall(head(path, 10_000))
        started = time.monotonic()
        received = b""
        while time.monotonic() - started < DRIP_DEADLINE_S + STARVED_BOUND_S:
            with contextlib.suppress(OSError):
                sock.sendall(b" ")  # one byte at a time, never the whole body
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            received += chunk
            if not chunk or b"\r\n\r\n" in received:
                break
        elapsed = time.monotonic() - started
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), received
    assert b"application/json" in rest
    assert DRIP_DEADLINE_S * 0.9 <= elapsed < DRIP_DEADLINE_S + STARVED_BOUND_S


def test_errors_of_the_server_itself_are_json(serve: Callable[..., FunctionServer]) -> None:
    server = serve("webhook")
    with connection(server) as sock:
        sock.sendall(head("/", 2, "X-Big: " + "a" * 9000) + b"{}")
        status, headers, body = read_response(sock)
    assert assert_json_error(status, headers, body, 431)["field"] == "headers"
    with connection(server) as sock:
        sock.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
        assert_json_error(*read_response(sock), 400)
    with connection(server) as sock:
        sock.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert_json_error(*read_response(sock), 404)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_expect_continue_over_the_limit_is_refused_before_the_body(
    serve: Callable[..., FunctionServer], name: str
) -> None:
    """The client waits for ``100 Continue``; the 413 comes instead, with no body sent."""
    server = serve(name)
    _, path, _ = FUNCTIONS[name]
    with connection(server) as sock:
        sock.sendall(head(path, 64 * 1024 * 1024, "Expect: 100-continue"))
        status, headers, body = read_response(sock)
    assert assert_json_error(status, headers, body, 413)["field"] == "body"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_expect_continue_within_the_limit_gets_continue_then_its_answer(
    serve: Callable[..., FunctionServer], name: str
) -> None:
    server = serve(name)
    _, path, body = FUNCTIONS[name]
    with connection(server) as sock:
        sock.sendall(head(path, len(body), "Expect: 100-continue"))
        interim, _, _ = read_response(sock)
        sock.sendall(body)
        status, headers, reply = read_response(sock)
    assert interim == 100
    assert status == 200, reply
    assert headers["content-type"] == "application/json"
