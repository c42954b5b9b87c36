"""``/healthz``, ``/readyz`` and ``/metrics`` on the stdlib HTTP server, in a daemon thread.

Liveness means "the watch is not dead": the kubelet restarts a forwarder whose watch has made
no contact with the API server for ``dead_after_seconds``, which is the one failure a restart can
cure (a wedged connection, a lost token). An open but silent stream is not contact; the watch
calls are sized so a quiet, healthy cluster still makes contact in time (see ``watching``).
Readiness means "the first list is done"; nothing routes traffic to the pod, but rollouts wait
for it, so a broken new version never replaces a working one. While it fails, its body carries
the API server's reason (a refused field selector, missing RBAC), so ``kubectl describe pod``
shows why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from khook_core.forwarder.metrics import CONTENT_TYPE, ForwarderMetrics

logger = logging.getLogger(__name__)


class ProbeServer:
    """Serves the three endpoints until ``stop``.

    Args:
        host / port: where to listen; port 0 picks a free port (see ``port`` after start).
        alive / ready: the checks behind /healthz and /readyz.
        metrics: rendered at /metrics.
        not_ready_because: why /readyz fails, added to its body (empty when unknown).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        metrics: ForwarderMetrics,
        not_ready_because: Callable[[], str] = lambda: "",
    ) -> None:
        def readiness() -> tuple[int, str, str]:
            if ready():
                return _check(True, "ready", "")
            why = not_ready_because()
            body = f"first list not done: {why}" if why else "first list not done"
            return _check(False, "", body)

        routes: dict[str, Callable[[], tuple[int, str, str]]] = {
            "/healthz": lambda: _check(alive(), "watch alive", "watch dead"),
            "/readyz": readiness,
            "/metrics": lambda: (200, CONTENT_TYPE, metrics.render()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                missing = (404, "text/plain", "not found\n")
                status, content_type, body = route() if route else missing
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("probe %s", format % args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="khook-probes", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _check(ok: bool, good: str, bad: str) -> tuple[int, str, str]:
    return (200, "text/plain", f"{good}\n") if ok else (503, "text/plain", f"{bad}\n")
