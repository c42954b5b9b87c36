"""A test API server for khook's Hooks: list, watch, read and status patches, and core Events.

It speaks the same protocol as the real server where the forwarder's Hook code uses it (a list
with a resourceVersion, a chunked watch from it, ``GET`` of one Hook, a merge patch of
``/status`` whose ``metadata.resourceVersion`` must match or the answer is 409, ``POST`` and
``PATCH`` of Events), and takes faults the real server will not give on demand:
``conflicts`` answers the next N status patches with 409 whatever they carry, ``refuse``
answers a Hook's status patches with 422.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.kube_api import LoopbackApi, _chunk, _end, _status

HOOKS = re.compile(
    r"^/apis/kagent\.dev/v1alpha2(?:/namespaces/([^/]+))?/hooks(?:/([^/]+))?(/status)?$"
)
EVENTS = re.compile(r"^/api/v1/namespaces/([^/]+)/events(?:/([^/]+))?$")


@dataclass
class HookKubeApi(LoopbackApi):
    """The server; ``start()`` it and ``stop()`` it."""

    conflicts: int = 0
    """The next this many status patches are answered 409."""
    list_delay: float = 0.0
    """Seconds a list waits before it answers (a slow API server at the forwarder's start)."""
    refuse: set[str] = field(default_factory=set)
    """``namespace/name`` of Hooks whose status patches are answered 422 (a rejected value)."""
    status_patches: list[tuple[str, int]] = field(default_factory=list)
    """(``namespace/name``, HTTP status) of every status patch."""
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    _rv: int = 100
    _log: list[tuple[int, bytes]] = field(default_factory=list)

    def start(self) -> HookKubeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def handle(self) -> None:
                with contextlib.suppress(OSError):  # a keep-alive client closed at teardown
                    super().handle()

            def do_GET(self) -> None:
                api._serve(self, "GET")

            def do_POST(self) -> None:
                api._serve(self, "POST")

            def do_PATCH(self) -> None:
                api._serve(self, "PATCH")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._listen(Handler)
        return self

    # --- the cluster's Hooks ---------------------------------------------------------------

    def put_hook(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create or change a Hook's spec (its generation moves, as the real server's does)."""
        with self._cond:
            key = f"{namespace}/{name}"
            old = self.hooks.get(key)
            meta = {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "generation": (old["metadata"]["generation"] + 1) if old else 1,
            }
            obj = {
                "apiVersion": "kagent.dev/v1alpha2",
                "kind": "Hook",
                "metadata": meta,
                "spec": spec,
                "status": (old or {}).get("status") or {},
            }
            return self._store("MODIFIED" if old else "ADDED", key, obj)

    def label(self, namespace: str, name: str) -> None:
        """Someone else changes the Hook's metadata (resourceVersion moves, generation not)."""
        with self._cond:
            obj = json.loads(json.dumps(self.hooks[f"{namespace}/{name}"]))
            obj["metadata"].setdefault("labels", {})["touched"] = str(self._rv)
            self._store("MODIFIED", f"{namespace}/{name}", obj)

    def _store(self, kind: str, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.hooks[key] = obj
        line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        self._log.append((self._rv, line))
        self._cond.notify_all()
        return obj

    # --- HTTP ------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length)) if length else None
        try:
            if (match := HOOKS.match(parts.path)) is not None:
                self._hooks(handler, method, query, body, *match.groups())
            elif (match := EVENTS.match(parts.path)) is not None:
                self._events(handler, method, body, *match.groups())
            else:
                _send(handler, 404, _status(404, "NotFound", parts.path))
        except (OSError, ValueError):  # the client went away, or the server is stopping
            handler.close_connection = True

    def _hooks(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        query: dict[str, str],
        body: Any,
        namespace: str | None,
        name: str | None,
        status: str | None,
    ) -> None:
        key = f"{namespace}/{name}"
        if name is None and query.get("watch") == "true":
            self._watch(
                handler,
                namespace,
                int(query.get("resourceVersion") or 0),
                float(query.get("timeoutSeconds") or 5),
            )
        elif name is None:
            time.sleep(self.list_delay)
            with self._cond:
                items = [
                    h for k, h in sorted(self.hooks.items()) if namespace in (None, k.split("/")[0])
                ]
                body = {
                    "kind": "HookList",
                    "apiVersion": "kagent.dev/v1alpha2",
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                }
            _send(handler, 200, body)
        elif key not in self.hooks:
            _send(handler, 404, _status(404, "NotFound", key))
        elif method == "GET":
            _send(handler, 200, self.hooks[key])
        elif method == "PATCH" and status:
            if key in self.refuse:
                self.status_patches.append((key, 422))
                _send(handler, 422, _status(422, "Invalid", "status: rejected"))
                return
            with self._cond:
                current = self.hooks[key]
                wanted = (body.get("metadata") or {}).get("resourceVersion")
                if self.conflicts > 0 or wanted not in (
                    None,
                    current["metadata"]["resourceVersion"],
                ):
                    self.conflicts = max(0, self.conflicts - 1)
                    self.status_patches.append((key, 409))
                    _send(handler, 409, _status(409, "Conflict", "the object has been modified"))
                    return
                obj = json.loads(json.dumps(current))
                obj["status"] = {
                    k: v
                    for k, v in {**obj.get("status", {}), **body["status"]}.items()
                    if v is not None
                }
                stored = self._store("MODIFIED", key, obj)
                self.status_patches.append((key, 200))
            _send(handler, 200, stored)
        else:
            _send(handler, 405, _status(405, "MethodNotAllowed", method))

    def _watch(
        self, handler: BaseHTTPRequestHandler, namespace: str | None, since: int, timeout: float
    ) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        deadline = time.monotonic() + min(timeout, 5.0)
        while True:
            with self._cond:
                lines = [line for rv, line in self._log if rv > since]
                if not lines and not self._stopping:
                    self._cond.wait(max(0.0, deadline - time.monotonic()))
                    lines = [line for rv, line in self._log if rv > since]
                since = self._rv
            for line in lines:
                obj = json.loads(line)["object"]
                if namespace in (None, obj["metadata"]["namespace"]):
                    _chunk(handler, line)
            if self._stopping or time.monotonic() >= deadline:
                break
        _end(handler)

    def _events(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        body: Any,
        namespace: str,
        name: str | None,
    ) -> None:
        with self._cond:
            if method == "POST":
                key = f"{namespace}/{body['metadata']['name']}"
                if key in self.events:
                    _send(handler, 409, _status(409, "AlreadyExists", key))
                    return
                self.events[key] = body
                _send(handler, 201, body)
                return
            key = f"{namespace}/{name}"
            if key not in self.events:
                _send(handler, 404, _status(404, "NotFound", key))
            elif method == "PATCH":
                self.events[key] = {**self.events[key], **body}
                _send(handler, 200, self.events[key])
            else:
                _send(handler, 200, self.events[key])


def _send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        handler.wfile.write(payload)
