"""Serving a function outside Cloud Run: functions-framework's app on gunicorn, hardened.

``python -m functions_framework`` serves with gunicorn's threaded worker, 4 threads per CPU and
HTML error pages. That is fine behind Cloud Run's front end; the local stack (``khook up``) and
any self-hosted run start functions with this module instead, which serves the same app with:

- ``KHOOK_SERVER_THREADS`` threads (default 32): a client that sends headers and then stalls
  holds a thread until the body deadline (``KHOOK_BODY_READ_TIMEOUT``), so the pool is sized
  for a crowd of them with room left for real requests;
- JSON for the errors gunicorn answers itself (400 for an unparsable request, 414, 431
  ``Request Header Fields Too Large``, 501 ...), in khook's ``{"error", "status", "field"}``
  body;
- ``Expect: 100-continue`` answered by the function, not the server: ``100 Continue`` is sent
  only once the request has passed the checks that need no body, so a declared
  ``Content-Length`` over the limit is refused with 413 before the client sends the body.

Usage::

    python -m khook_local.server --source functions/webhook/main.py \\
        --signature-type http --host 127.0.0.1 --port 8080
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import gunicorn.app.base
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker
from pydantic import AliasChoices, Field

from khook_core.envsettings import EnvSettings

DEFERRED_CONTINUE_HEADER: Final = "X-Khook-Deferred-Continue"
"""Added to a request whose ``Expect: 100-continue`` the server left to the function."""
TARGET: Final = "handle"

_STATUS_OF: Final[tuple[tuple[type[Exception], int, str, str | None], ...]] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "path"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "expect"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "transfer-encoding"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", None),
    (http_errors.InvalidResponseHeader, 500, "Internal Server Error", None),
    (http_errors.InvalidResponseHeaderName, 500, "Internal Server Error", None),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error", None),
    (http_errors.ParseException, 400, "Bad Request", None),
)
"""Most specific first: what gunicorn itself answers, by the parse error it met."""


class ServerSettings(EnvSettings):
    """How a self-hosted function is served (``KHOOK_SERVER_<FIELD>``)."""

    env_prefix: ClassVar[str] = "KHOOK_SERVER_"

    threads: int = Field(default=32, ge=1, le=1024)
    """Request threads. Each stalled client holds one until the body deadline; 32 leaves room
    for real requests beside 16 such clients (the functions' own work is I/O-bound)."""
    keepalive: int = Field(default=5, ge=1, le=300)
    """Seconds an idle kept-alive connection stays open (parked on the poller, not a thread)."""
    graceful_timeout: int = Field(default=10, ge=1, le=600)
    """Seconds in-flight requests get to finish on SIGTERM."""
    log_level: str = Field(default="error", validation_alias=AliasChoices("GUNICORN_LOG_LEVEL"))
    """gunicorn's own log level (``GUNICORN_LOG_LEVEL``)."""


def status_of(exc: Exception) -> tuple[int, str, str | None]:
    """The status, reason and ``field`` for an error gunicorn met before the app ran."""
    for kind, status, reason, field in _STATUS_OF:
        if isinstance(exc, kind):
            return status, reason, field
    return 500, "Internal Server Error", None


def error_bytes(exc: Exception) -> bytes:
    """A complete HTTP/1.1 response with khook's JSON error body; the connection closes."""
    status, reason, field = status_of(exc)
    detail = str(exc) if status < 500 else "internal error"
    body: dict[str, Any] = {"error": f"{reason}: {detail}"[:500], "status": status}
    if field is not None:
        body["field"] = field
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode("latin-1") + payload


class JsonThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, answering its own errors in JSON and leaving
    ``100 Continue`` to the function."""

    def handle_request(self, req: Any, conn: Any) -> Any:
        if getattr(req, "_expected_100_continue", False):
            req._expected_100_continue = False
            req.headers.append((DEFERRED_CONTINUE_HEADER.upper(), "1"))
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        status, _, _ = status_of(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            self.log.warning("Invalid request from %s: %s", (addr or ("",))[0], exc)
        try:
            client.sendall(error_bytes(exc))
        except OSError:
            self.log.debug("Failed to send error message.")


class FunctionApplication(gunicorn.app.base.BaseApplication):  # type: ignore[misc]
    """One function's app on gunicorn with ``JsonThreadWorker``."""

    def __init__(self, app: Any, bind: str, settings: ServerSettings) -> None:
        self.app = app
        self.options: dict[str, Any] = {
            "bind": bind,
            "workers": 1,
            "worker_class": f"{__name__}.JsonThreadWorker",
            "threads": settings.threads,
            "keepalive": settings.keepalive,
            "graceful_timeout": settings.graceful_timeout,
            "timeout": 0,  # the body deadline and the invocation budget bound a request
            "limit_request_line": 0,  # as functions-framework: long URLs are the app's business
            "loglevel": settings.log_level,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m khook_local.server",
        description=__doc__.split("\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("--source", required=True, help="the function's main.py")
    parser.add_argument("--signature-type", choices=("http", "cloudevent"), default="http")
    parser.add_argument("--target", default=TARGET)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    settings = ServerSettings.from_env(os.environ)  # the launcher's entry point
    import functions_framework

    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        args.target, args.source, args.signature_type
    )
    FunctionApplication(app, f"{args.host}:{args.port}", settings).run()


if __name__ == "__main__":
    main()
