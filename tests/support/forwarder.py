"""Builders shared by the forwarder's tests: a fixed clock, Event objects, a configured filter."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from khook_core.forwarder.app import Forwarder, load_source
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.filtering import EventFilter, Outbound
from khook_core.forwarder.publishing import PublishClient
from khook_core.forwarder.pubsub_rest import PublishError
from tests.support.kube_api import EVENTS_API, FakeKubeApi

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


def event(
    api: str = EVENTS_API, *, age: timedelta = timedelta(seconds=5), **fields: Any
) -> dict[str, Any]:
    """One Event object shaped as the API server returns it, last seen ``age`` before NOW."""
    return FakeKubeApi(api=api).create(when=NOW - age, **fields)


def make_filter(
    *,
    forward_all: bool = False,
    api: str = EVENTS_API,
    config_dir: Path = REPO / "config",
    clock: Callable[[], datetime] = lambda: NOW,
) -> EventFilter:
    """The filter the forwarder builds from ``config_dir`` (on the fixed clock by default)."""
    source, mapping = load_source(config_dir, clock, need_mapping=not forward_all)
    return EventFilter(
        source=source,
        mapping=mapping,
        api=api,
        cluster="prod-eu",
        forward_all=forward_all,
        clock=clock,
    )


@contextlib.contextmanager
def started_forwarders() -> Iterator[Callable[..., Forwarder]]:
    """``start(settings, publish_client=None)``: a Forwarder, started; each is stopped on exit
    (one second to flush)."""
    started: list[Forwarder] = []

    def start(
        settings: ForwarderSettings, publish_client: PublishClient | None = None
    ) -> Forwarder:
        fwd = Forwarder(settings, publish_client=publish_client)
        fwd.start()
        started.append(fwd)
        return fwd

    try:
        yield start
    finally:
        for fwd in started:
            fwd.stop(flush_seconds=1)


TOPIC = "projects/p1/topics/khook-kubernetes"


@dataclass
class StallingKubeApi(FakeKubeApi):
    """The test API server, but its next ``stalls`` watch calls are wedged connections.

    A stalled call answers 200 with chunked headers and then sends nothing at all, ignoring
    ``timeoutSeconds``, until the client gives up and closes the socket (or the server stops).
    That is a half-dead connection behind a proxy or NAT: open, silent, never ending.
    ``stalled`` records how long each stalled call was held by the client.
    """

    stalls: int = 0
    stalled: tuple[float, ...] = ()

    def _watch(
        self, handler: BaseHTTPRequestHandler, namespace: str | None, query: dict[str, str]
    ) -> None:
        with self._cond:
            stall = self.stalls > 0
            if stall:
                self.stalls -= 1
        if not stall:
            super()._watch(handler, namespace, query)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()
        began = time.monotonic()
        connection = handler.connection
        while not self._stopping:
            readable, _, _ = select.select([connection], [], [], 0.05)
            try:
                if readable and not connection.recv(1, socket.MSG_PEEK):
                    break  # the client closed its end
            except OSError:
                break  # or reset it
        handler.close_connection = True
        with self._cond:
            self.stalled = (*self.stalled, time.monotonic() - began)


class RecordingClient:
    """A PublishClient (the forwarder's own layer) whose availability a test switches.

    Each message's outcome is its own, as the REST client reports them: ``refuse`` holds data
    Pub/Sub refuses as invalid; while ``up`` is clear every message fails as unavailable.
    """

    def __init__(self) -> None:
        self.up = threading.Event()
        self.up.set()
        self.accepted: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0
        self.refuse: set[bytes] = set()
        self.stopped = False

    def publish(
        self, topic: str, messages: Sequence[Outbound], timeout: float
    ) -> list[PublishError | None]:
        assert topic == TOPIC
        assert timeout > 0
        outcomes: list[PublishError | None] = []
        for message in messages:
            self.attempts += 1
            if message.data in self.refuse:
                outcomes.append(PublishError("HTTP 400: message too large", permanent=True))
            elif self.up.is_set():
                self.accepted.append((message.data, dict(message.attributes)))
                outcomes.append(None)
            else:
                outcomes.append(PublishError("ConnectError: connection refused", permanent=False))
        return outcomes

    def stop(self) -> None:
        self.stopped = True


class ForwarderProcess:
    """``python -m khook_core.forwarder`` as a real process, configured by environment.

    Args:
        log_path: stdout and stderr (JSON log lines).
        env: KHOOK_* and PUBSUB_EMULATOR_HOST settings; the probe port is chosen here.
    """

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.port = _free_port()
        full_env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "KHOOK_FORWARDER_HOST": "127.0.0.1",
            "KHOOK_FORWARDER_PORT": str(self.port),
            **env,
        }
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "khook_core.forwarder"],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
            )

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics by name and labels (empty while the server is not up)."""
        try:
            url = f"http://127.0.0.1:{self.port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as reply:
                text = reply.read().decode()
        except OSError:
            return {}
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name.removeprefix("khook_forwarder_")] = float(value)
        return samples

    def metric(self, name: str, labels: str = "") -> float:
        """One sample (``-1`` while the server is not up, 0 for a label not counted yet)."""
        samples = self.metrics()
        return samples.get(name + labels, 0.0) if samples else -1.0

    def total(self, name: str, samples: dict[str, float] | None = None) -> float:
        """The sum over every label of a counter, such as all filter reasons, in ``samples``
        (a ``metrics()`` taken earlier) or in a fresh scrape."""
        samples = self.metrics() if samples is None else samples
        return sum(v for k, v in samples.items() if k.split("{")[0] == name)

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
