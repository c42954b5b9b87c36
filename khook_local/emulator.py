"""The Pub/Sub emulator of the Google Cloud CLI: finding it, running it, administering it.

The launcher is started directly (not through ``gcloud beta emulators``) in its own process
group, is ready when ``GET /`` answers ``Ok`` and is stopped by signalling the group, so no java
outlives it. Administration uses the REST API with the stdlib, so neither
``khook up`` nor the tests need google-cloud-pubsub; ``PubSubRest`` speaks the same API to the
in-process bus. The test fixtures and benchmarks import this module.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from khook_local import PROJECT
from khook_local.ports import free_port
from khook_local.processes import stop_group

__all__ = [
    "INSTALL_HINT",
    "PROJECT",
    "READY_DEADLINE_S",
    "PubSubEmulator",
    "PubSubRest",
    "Received",
    "find_launcher",
    "free_port",
    "sdk_root",
]

INSTALL_HINT: Final = (
    "install the Pub/Sub emulator: `gcloud components install pubsub-emulator` (or "
    "`apt-get install google-cloud-cli-pubsub-emulator` when gcloud came from apt) and a "
    "Java 17+ runtime on PATH"
)
READY_DEADLINE_S: Final = 60.0
"""Measured ready time is 0.7-0.85 s; a loaded CI machine gets far more."""


@functools.cache
def sdk_root() -> str | None:
    """The Cloud SDK root from ``gcloud info`` (about 0.65 s, so asked once a process)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return out.stdout.strip() or None


# Where each emulator's launcher sits under the SDK root, and how to install it.
LAUNCHERS: Final = {
    "pubsub": ("platform/pubsub-emulator/bin/cloud-pubsub-emulator", INSTALL_HINT),
    "firestore": (
        "platform/cloud-firestore-emulator/cloud_firestore_emulator",
        "install the Firestore emulator: `gcloud components install cloud-firestore-emulator` "
        "(or `apt-get install google-cloud-cli-firestore-emulator` when gcloud came from apt) "
        "and a Java 17+ runtime on PATH",
    ),
}


def find_launcher(component: str = "pubsub") -> tuple[Path | None, str]:
    """An emulator's launcher (``pubsub`` or ``firestore``), or None and why it is unusable."""
    relative, hint = LAUNCHERS[component]
    root = sdk_root()
    if root is None:
        return None, f"gcloud not found on PATH; {hint}"
    launcher = Path(root) / relative
    if not launcher.exists():
        return None, f"no {component} emulator under {root}; {hint}"
    if shutil.which("java") is None:
        return None, f"no java on PATH; {hint}"
    return launcher, ""


@dataclass(frozen=True)
class Received:
    """One pulled message."""

    data: bytes
    attributes: dict[str, str]
    message_id: str

    def json(self) -> Any:
        return json.loads(self.data)


class PubSubRest:
    """The Pub/Sub REST API subset the stack and the tests use; subclasses say where it is."""

    project: str = PROJECT

    @property
    def host(self) -> str:
        """``host:port`` of the server."""
        raise NotImplementedError

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://{self.host}/v1/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - local server
            text = reply.read()
        return json.loads(text) if text else {}

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    def create_topic(self, topic: str | None = None) -> str:
        """Create a topic (a unique name by default); returns its id."""
        topic = topic or f"t-{uuid.uuid4().hex[:12]}"
        self._call("PUT", self.topic_path(topic), {})
        return topic

    def create_subscription(
        self,
        topic: str,
        name: str | None = None,
        *,
        push_endpoint: str | None = None,
        ack_deadline: int = 10,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        min_backoff: str = "1s",
        max_backoff: str = "2s",
    ) -> str:
        """Create a pull (or push) subscription; returns its id."""
        name = name or f"s-{uuid.uuid4().hex[:12]}"
        body: dict[str, Any] = {
            "topic": self.topic_path(topic),
            "ackDeadlineSeconds": ack_deadline,
            "retryPolicy": {"minimumBackoff": min_backoff, "maximumBackoff": max_backoff},
        }
        if push_endpoint:
            body["pushConfig"] = {"pushEndpoint": push_endpoint}
        if dead_letter_topic:
            body["deadLetterPolicy"] = {
                "deadLetterTopic": self.topic_path(dead_letter_topic),
                "maxDeliveryAttempts": max_delivery_attempts,
            }
        self._call("PUT", self.subscription_path(name), body)
        return name

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        message: dict[str, Any] = {"data": base64.b64encode(data).decode()}
        if attributes:
            message["attributes"] = attributes
        reply = self._call("POST", f"{self.topic_path(topic)}:publish", {"messages": [message]})
        return str(reply["messageIds"][0])

    def pull(self, subscription: str, max_messages: int = 1000) -> list[Received]:
        """Pull what is available now and acknowledge it."""
        path = self.subscription_path(subscription)
        reply = self._call(
            "POST", f"{path}:pull", {"maxMessages": max_messages, "returnImmediately": True}
        )
        received = reply.get("receivedMessages") or []
        if received:
            self._call("POST", f"{path}:acknowledge", {"ackIds": [r["ackId"] for r in received]})
        return [
            Received(
                base64.b64decode(r["message"].get("data", "")),
                r["message"].get("attributes") or {},
                r["message"]["messageId"],
            )
            for r in received
        ]

    def pull_until(
        self, subscription: str, count: int, timeout: float = 20.0, quiet: float = 0.0
    ) -> list[Received]:
        """Pull until ``count`` messages arrived (then ``quiet`` more seconds for extras)."""
        got: list[Received] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(got) < count:
            batch = self.pull(subscription)
            got.extend(batch)
            if not batch:
                time.sleep(0.05)
        calm_end = time.monotonic() + quiet
        while time.monotonic() < calm_end:
            got.extend(self.pull(subscription))
            time.sleep(0.05)
        return got


@dataclass
class RestEndpoint(PubSubRest):
    """The REST API at a known address (a running emulator or the in-process bus)."""

    address: str
    project: str = PROJECT

    @property
    def host(self) -> str:
        return self.address


@dataclass
class PubSubEmulator(PubSubRest):
    """One emulator process on a fixed port (so a restart keeps the address clients use).

    Args:
        launcher: from ``find_launcher()``.
        port: where it listens (any free port by default).
        log_path: its output; discarded when None.
    """

    launcher: Path
    port: int = field(default_factory=free_port)
    project: str = PROJECT
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, deadline: float = READY_DEADLINE_S) -> PubSubEmulator:
        argv = [str(self.launcher), "--host=127.0.0.1", f"--port={self.port}"]
        if self.log_path is None:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0
            )
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    process_group=0,
                )
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Pub/Sub emulator exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as reply:
                    if reply.read().startswith(b"Ok"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Pub/Sub emulator on {self.port} not ready after {deadline:.0f} s")

    def stop(self) -> None:
        """SIGTERM the process group (launcher and java), SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc.pid, 10.0, proc)
