"""``khook send``: fire payload files at the running stack the way real producers would.

HTTP sources get a POST with the demo bearer token ``khook up`` generated (to a ``--path`` other
than ``/`` also an HMAC signature of the body with the demo key: the webhook source's ``/github``
accepts signatures only); Pub/Sub sources get
a message published through the REST API (emulator or in-process bus alike) with the
attributes their producer sets: the forwarder's ``khook.*`` for kubernetes, the Kafka Connect
sink's ``kafka.topic/partition/offset/timestamp`` for kafka. ``--attribute k=v`` overrides or
adds (as a header for HTTP sources). A file holding one JSON document is one payload; otherwise
each non-empty line is one (JSON lines, or text records).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from khook_core.timeshift import shift_to_now
from khook_core.transport.describe import SAMPLE_ATTRIBUTE
from khook_local import stackfile
from khook_local.emulator import RestEndpoint
from khook_local.stackfile import FunctionInfo, StackInfo

HTTP_TIMEOUT_S: Final = 60.0
"""A function answers after the dispatch; the agent may be slow."""
CLUSTER: Final = "local"
SIGNATURE_HEADERS: Final = ("X-Hub-Signature-256", "X-Signature-256")
"""GitHub's and the generic signature header; the function verifies whichever it expects."""


class SendError(Exception):
    """Nothing can be sent (no stack, unknown source, unreadable file).

    ``status`` is the exit status: 2 for a file the user named that cannot be used (as for any
    other bad argument), 1 for a stack that is not there.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


FILE_PROBLEM: Final = 2


@dataclass(frozen=True)
class Payload:
    """One request body or message, and where it came from."""

    file: Path
    line: int | None
    body: bytes
    doc: Any = None
    """The parsed JSON, None when the payload is not JSON."""

    @property
    def label(self) -> str:
        return self.file.name + (f":{self.line}" if self.line is not None else "")


def load(path: Path) -> list[Payload]:
    """One JSON document, or one payload per non-empty line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = (exc.strerror or str(exc)).lower()
        raise SendError(f"{path}: {problem}", FILE_PROBLEM) from None
    if not raw.strip():
        raise SendError(f"{path}: the file is empty (nothing to send)", FILE_PROBLEM)
    try:
        return [Payload(path, None, raw, json.loads(raw))]
    except ValueError:
        pass
    payloads = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
            payloads.append(Payload(path, number, line, doc))
    return payloads


def shifted(payloads: list[Payload]) -> tuple[list[Payload], timedelta]:
    """The payloads with their RFC 3339 timestamps moved so the newest is now."""
    docs = [p.doc for p in payloads if p.doc is not None]
    moved, delta = shift_to_now(docs)
    if not delta:
        return payloads, delta
    out, docs_iter = [], iter(moved)
    for payload in payloads:
        if payload.doc is None:
            out.append(payload)
        else:
            doc = next(docs_iter)
            out.append(replace(payload, doc=doc, body=json.dumps(doc).encode()))
    return out, delta


def default_attributes(source: str, payload: Payload, index: int) -> dict[str, str]:
    """What the usual producer of ``source`` would attach to this message."""
    doc = payload.doc if isinstance(payload.doc, dict) else {}
    if source == "kubernetes":
        api = (
            "events.k8s.io/v1"
            if str(doc.get("apiVersion", "")).startswith("events.k8s.io")
            else "v1"
        )
        metadata = doc.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        return {
            "khook.source": "kubernetes",
            "khook.cluster": CLUSTER,
            "khook.api": api,
            "khook.namespace": str(metadata.get("namespace", "")),
            "khook.reason": str(doc.get("reason", "")),
            "khook.type": str(doc.get("type", "")),
        }
    if source == "kafka":
        now_ms = time.time_ns() // 1_000_000
        return {
            "kafka.topic": payload.file.stem,
            "kafka.partition": "0",
            "kafka.offset": str(now_ms * 1000 + index),
            "kafka.timestamp": str(now_ms),
        }
    return {}


def parse_attributes(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` → dict.

    Raises:
        SendError: an item without ``=``.
    """
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SendError(f"--attribute {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def running_stack(state_dir: Path) -> StackInfo:
    """The ready stack recorded in ``state_dir``.

    Raises:
        SendError: no stack, a stale file, or a stack still starting.
    """
    info = stackfile.read(state_dir)
    where = stackfile.path_in(state_dir)
    if info is None:
        raise SendError(
            f"no running stack ({where} not found): start one with `make run` "
            "(or `khook up`) in another terminal"
        )
    if not stackfile.is_running(info):
        raise SendError(
            f"{where} is stale (pid {info.pid} is not running): start the stack with `make run`"
        )
    if not info.ready:
        raise SendError(f"the stack (pid {info.pid}) is still starting; try again in a moment")
    return info


class Sender:
    """Sends payloads of one source to one running stack and reports each on ``out``."""

    def __init__(
        self,
        info: StackInfo,
        source: str,
        out: TextIO,
        overrides: dict[str, str] | None = None,
        path: str = "/",
    ) -> None:
        function = info.functions.get(source)
        if function is None:
            raise SendError(
                f"the stack runs no function {source!r} "
                f"(it runs: {', '.join(sorted(info.functions))})"
            )
        self.info, self.source, self.function, self.out = info, source, function, out
        self.overrides = overrides or {}
        self.path = "/" + path.lstrip("/")
        self.failures = 0
        self._count = 0

    def send(self, payload: Payload) -> None:
        self._count += 1
        try:
            if self.function.signature == "http":
                result = self._post(self.function, payload)
            else:
                result = self._publish(self.function, payload)
        except (OSError, KeyError, ValueError) as exc:
            self.failures += 1
            result = f"failed: {exc}"
        self.out.write(f"{self.source:<13} {payload.label:<40} {result}\n")
        self.out.flush()

    def _publish(self, function: FunctionInfo, payload: Payload) -> str:
        assert function.topic is not None
        assert self.info.bus is not None
        attributes = (
            {SAMPLE_ATTRIBUTE: payload.label}
            | default_attributes(self.source, payload, self._count)
            | self.overrides
        )
        api = RestEndpoint(self.info.bus.host, self.info.bus.project)
        message_id = api.publish(function.topic, payload.body, attributes)
        return f"→ topic {function.topic}: published as message {message_id}"

    def _post(self, function: FunctionInfo, payload: Payload) -> str:
        headers = {"Content-Type": "application/json"}
        if function.token:
            headers["Authorization"] = f"Bearer {function.token}"
        if function.hmac_secret and self.path != "/":  # e.g. the webhook's /github: HMAC only
            digest = hmac.new(function.hmac_secret.encode(), payload.body, hashlib.sha256)
            for name in SIGNATURE_HEADERS:
                headers[name] = f"sha256={digest.hexdigest()}"
        headers |= self.overrides
        url = function.url.rstrip("/") + self.path
        request = urllib.request.Request(  # noqa: S310
            url, data=payload.body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:  # noqa: S310
                status, body = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, exc.read()
        if not 200 <= status < 300:
            self.failures += 1
        return f"→ HTTP {status}: {describe(body)}"


def describe(body: bytes) -> str:
    """A function's JSON answer in one line: each decision, or the error."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200]
    if not isinstance(answer, dict):
        return str(answer)[:200]
    decisions = answer.get("decisions")
    if isinstance(decisions, list) and decisions:
        parts = []
        for d in decisions:
            resource = str(d.get("resource") or "").lstrip("/")
            text = f"{d.get('decision')} {d.get('type') or ''} {resource}".strip()
            if d.get("hook"):
                text += f" (hook {d['hook']})"
            parts.append(text)
        return "; ".join(parts)
    return str(answer.get("error") or answer)[:300]


def run_send(
    source: str,
    files: Sequence[Path],
    *,
    state_dir: Path,
    attributes: Sequence[str],
    shift: bool,
    path: str,
    out: TextIO,
) -> int:
    """``khook send``: 0 when every payload was accepted, 1 otherwise."""
    loaded = [(file, load(file)) for file in files]  # a bad file is reported before anything
    sender = Sender(running_stack(state_dir), source, out, parse_attributes(attributes), path)
    for file, payloads in loaded:
        if shift:
            payloads, delta = shifted(payloads)
            if delta:
                out.write(
                    f"{source:<13} {file.name:<40} timestamps moved by "
                    f"{_human(delta)} so the newest is now\n"
                )
        for payload in payloads:
            sender.send(payload)
    return 1 if sender.failures else 0


def _human(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = (f"{days}d " if days else "") + f"{hours}h {rest // 60}m"
    return ("-" if delta < timedelta(0) else "+") + text
