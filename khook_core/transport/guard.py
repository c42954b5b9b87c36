"""The first thing every request to a function meets: JSON answers and a body read deadline.

functions-framework answers what it cannot handle itself with HTML (a 404, a 405, its 400 for
envelopes it cannot convert, the 500 of an uncaught exception), and reads request bodies for as
long as a client takes. ``install`` wraps a function's Flask app so that:

- every framework-level error is a JSON body ``{"error", "status", "field"}``; an uncaught
  exception stays a 500 with ``X-Google-Status: crash`` (what makes Pub/Sub redeliver);
- the request body must arrive within ``body_read_timeout`` seconds of the request, else 408
  (under gunicorn the process's one deadline watchdog, ``deadlines.WATCHDOG``, shuts the
  socket's read side, so a stalled or dripping client cannot hold a thread past the deadline;
  other servers check between reads);
- a CloudEvent function checks the delivery first (``envelope.check``): a body over
  ``MAX_DELIVERY_BYTES`` is 413 (unread when its ``Content-Length`` says so), a push delivery
  that can never succeed is acknowledged with its reason logged, any other malformed request
  gets its 4xx JSON; a push delivery that passes goes straight to the function when it
  registered (``transport.serve_pushes``, ``direct``), answered as the framework would;
- a refused body is not read to its end: the framework's after-request drain is dropped and the
  read side shut, so a 413 costs no transfer; under ``khook_local.server``, which
  leaves ``Expect: 100-continue`` to the function, ``100 Continue`` goes out only when the body
  is first read, so a refused request is answered before the client sends its body.

Example (``khook_core.transport.start``, called by ``functions/<source>/main.py``, which
functions-framework executes inside the app)::

    guard.install_current(source="kafka", signature="cloudevent",
                          body_read_timeout=settings.body_read_timeout)
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import flask
from werkzeug.exceptions import HTTPException, RequestTimeout

from khook_core import logs
from khook_core.errors import InvalidEventError
from khook_core.transport import envelope
from khook_core.transport.deadlines import WATCHDOG, Entry
from khook_core.transport.direct import Direct

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

MAX_DELIVERY_BYTES: Final = 16 * 1024 * 1024
"""A CloudEvent function's request limit: Pub/Sub's 10 MB message limit, base64-encoded in its
push envelope, with room for attributes."""
READ_CHUNK_BYTES: Final = 64 * 1024
CRASH_HEADERS: Final = {"X-Google-Status": "crash"}
"""What functions-framework sets on an uncaught exception; Pub/Sub and Eventarc retry on it."""
_FIELD_OF_STATUS: Final = {
    404: "path",
    405: "method",
    408: "body",
    411: "body",
    413: "body",
    414: "path",
    415: "content-type",
    431: "headers",
}

_ACKNOWLEDGED: Final = json.dumps({"status": 200, "acknowledged": True}).encode()
Signature = Literal["http", "cloudevent"]
F = TypeVar("F", bound=Callable[..., Any])
DOCUMENT_KEY: Final = "khook.document"
"""Where the delivery check leaves the body it parsed, in the WSGI environ."""


class CheckedRequest(flask.Request):
    """A request whose body the delivery check has parsed already: ``get_json`` (what
    functions-framework converts a push envelope from) answers with that document instead of
    parsing the body again. The check's parse is the stricter, and for every body it passes
    the two give the same value."""

    def __init__(
        self, environ: WSGIEnvironment, populate_request: bool = True, shallow: bool = False
    ) -> None:
        super().__init__(environ, populate_request, shallow)
        document = environ.get(DOCUMENT_KEY)
        if document is not None and self.is_json:  # get_json itself refuses any other type
            self._cached_json = (document, document)


def install(
    app: flask.Flask, *, source: str, signature: Signature, body_read_timeout: float
) -> None:
    """Give ``app`` JSON errors, the body deadline and (CloudEvent) the delivery check."""
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(500, crash)  # replaces the framework's plain-text crash page
    if signature == "cloudevent":
        app.after_request(json_acknowledgement)
        if app.request_class is flask.Request:
            app.request_class = CheckedRequest
    guarded = RequestGuard(
        app.wsgi_app, app, source=source, signature=signature, body_read_timeout=body_read_timeout
    )
    app.wsgi_app = guarded  # type: ignore[method-assign]


def install_current(*, source: str, signature: Signature, body_read_timeout: float) -> None:
    """``install`` on the app functions-framework is creating (main.py runs inside it); a
    no-op when the module is imported on its own (tests, import-time benchmarks)."""
    if flask.has_app_context():
        app: flask.Flask = flask.current_app._get_current_object()  # type: ignore[attr-defined]
        install(app, source=source, signature=signature, body_read_timeout=body_read_timeout)


def direct_current(function: F) -> F:
    """Hand the app functions-framework is creating a way to call ``function`` (its target)
    with a checked push delivery without the framework's dispatch (``direct``); a no-op when
    the module is imported on its own, for an HTTP function, or with the framework's
    execution-id logging on (``LOG_EXECUTION_ID``), which only its dispatch provides."""
    if flask.has_app_context():
        app: flask.Flask = flask.current_app._get_current_object()  # type: ignore[attr-defined]
        guarded = app.wsgi_app
        if isinstance(guarded, RequestGuard) and guarded.signature == "cloudevent":
            import functions_framework

            logging_ids = getattr(functions_framework, "_enable_execution_id_logging", None)
            if logging_ids is not None and not logging_ids():
                guarded.direct = Direct(
                    app,
                    function,
                    acknowledgement=_ACKNOWLEDGED,
                    expected_after=[json_acknowledgement],
                )
    return function


def json_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(body, default=str),
        status=status,
        mimetype="application/json",
        headers=headers or {},
    )


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "status": status}
    field = field if field is not None else _FIELD_OF_STATUS.get(status)
    if field is not None:
        body["field"] = field
    return body


def http_error(exc: HTTPException) -> flask.Response:
    """Any ``HTTPException`` (404, 405, 408, 413 ...) as khook's JSON error body."""
    status = exc.code or 500
    if status == 500:
        return crash(exc)
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return json_response(error_body(status, exc.description or exc.name), status, headers)


def json_acknowledgement(response: flask.Response) -> flask.Response:
    """The framework answers a handled CloudEvent with an HTML-typed ``OK``; say it in JSON."""
    if response.status_code == 200 and response.mimetype == "text/html":
        response.set_data(_ACKNOWLEDGED)  # in place: cheaper than a new response per request
        response.mimetype = "application/json"
    return response


def crash(exc: Exception) -> flask.Response:
    """An uncaught exception: 500 with the crash header, naming only the exception's type."""
    original = getattr(exc, "original_exception", None) or exc
    return json_response(
        error_body(500, f"internal error ({type(original).__name__}); the delivery may be retried"),
        500,
        CRASH_HEADERS,
    )


class DeadlineStream:
    """``wsgi.input`` that refuses to wait past a deadline (raises ``RequestTimeout``).

    With a socket (gunicorn's ``gunicorn.socket``) the watchdog (``deadlines.WATCHDOG``) shuts
    the read side at the deadline, which ends a read blocked on a silent or dripping client;
    without one, the deadline is checked around each read.
    """

    def __init__(
        self,
        stream: Any,
        timeout: float,
        sock: socket.socket | None,
        declared: int | None,
        *,
        send_continue: bool = False,
    ) -> None:
        self._stream = stream
        self._send_continue = send_continue and sock is not None
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._sock = sock
        self._declared = declared
        self._watch: Entry | None = None
        self._expired = False
        self.received = 0
        self.finished = declared == 0

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes, never past the declared ``Content-Length`` (a server that
        hands over its raw socket file would otherwise block for bytes that never come)."""
        return self._take(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._take(self._stream.readline, size)

    def _take(self, read: Any, size: int | None) -> bytes:
        if self._declared is not None:
            left = self._declared - self.received
            size = left if size is None or size < 0 else min(size, left)
            if size <= 0:
                self.finished = True
                return b""
        self._check()
        self._arm()
        data: bytes = read() if size is None or size < 0 else read(size)
        self._check()
        self.received += len(data)
        if not data or (self._declared is not None and self.received >= self._declared):
            self.finished = True
            self.disarm()
        return data

    def _check(self) -> None:
        if self._expired or time.monotonic() > self._deadline:
            self._expired = True
            raise RequestTimeout(f"the request body did not arrive within {self._timeout:g} s")

    def _arm(self) -> None:
        if self._sock is None or self._watch is not None:
            return
        if self._send_continue:  # the client waits for this before it sends the body
            self._send_continue = False
            with contextlib.suppress(OSError):
                self._sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._watch = WATCHDOG.arm(self._deadline, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self.stop_reading()

    def stop_reading(self) -> None:
        """Shut the socket's read side: a blocked read returns, nothing more is drained."""
        if self._sock is not None and not self.finished:
            with contextlib.suppress(OSError):  # already closed by the client
                self._sock.shutdown(socket.SHUT_RD)

    def disarm(self) -> None:
        if self._watch is not None:
            WATCHDOG.disarm(self._watch)


class RequestGuard:
    """The WSGI middleware ``install`` puts in front of the framework's app."""

    def __init__(
        self,
        wrapped: WSGIApplication,
        app: flask.Flask,
        *,
        source: str,
        signature: Signature,
        body_read_timeout: float,
    ) -> None:
        self.wrapped = wrapped
        self.app = app
        self.source = source
        self.signature = signature
        self.body_read_timeout = body_read_timeout
        self.direct: Direct | None = None
        self._drain_dropped = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self._drop_framework_drain()
        declared = _content_length(environ)
        deferred = (
            environ.get("HTTP_X_KHOOK_DEFERRED_CONTINUE") == "1"
            and environ.get("HTTP_EXPECT", "").lower() == "100-continue"
        )
        stream = DeadlineStream(
            environ["wsgi.input"],
            self.body_read_timeout,
            environ.get("gunicorn.socket"),
            declared,
            send_continue=deferred,
        )
        environ["wsgi.input"] = stream
        statuses: list[int] = []

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)

        try:
            if self.signature == "cloudevent" and environ.get("REQUEST_METHOD") == "POST":
                checked = self._check_delivery(environ, stream, declared)
                if not isinstance(checked, envelope.Pass):
                    return checked(environ, recording)
                direct = self.direct
                if checked.push and direct is not None and direct.usable(environ):
                    served = direct.serve(environ, recording, checked.document)
                    if served is not None:
                        return served
            return self.wrapped(environ, recording)
        finally:
            stream.disarm()
            if statuses and statuses[-1] in (408, 413):
                stream.stop_reading()

    def _drop_framework_drain(self) -> None:
        """functions-framework registers an after-request hook that reads the whole body before
        answering; a refused body must not be read (gunicorn drains, with a bound, what a
        kept-alive connection left unread)."""
        if self._drain_dropped:
            return
        self._drain_dropped = True
        import functions_framework

        hooks = self.app.after_request_funcs.get(None, [])
        drain = getattr(functions_framework, "read_request", None)
        if drain in hooks:
            hooks.remove(drain)

    def _check_delivery(
        self, environ: WSGIEnvironment, stream: DeadlineStream, declared: int | None
    ) -> flask.Response | envelope.Pass:
        """The refusal or acknowledgement to answer, or the delivery passed on (the environ
        then carries the body the framework reads, and the check's parse of it)."""
        if declared is not None and declared > MAX_DELIVERY_BYTES:
            return self._refuse(
                InvalidEventError(
                    f"request body of {declared} bytes is over the limit of {MAX_DELIVERY_BYTES} "
                    "bytes",
                    field="body",
                    status=413,
                )
            )
        if declared is None and not environ.get("wsgi.input_terminated"):
            stream.finished = True  # no Content-Length, not chunked: no body (PEP 3333)
        try:
            body = b"" if stream.finished else _read_limited(stream, MAX_DELIVERY_BYTES)
        except RequestTimeout as exc:
            return self._refuse(InvalidEventError(str(exc.description), field="body", status=408))
        if body is None:
            return self._refuse(
                InvalidEventError(
                    f"request body is over the limit of {MAX_DELIVERY_BYTES} bytes",
                    field="body",
                    status=413,
                )
            )
        headers = _delivery_headers(environ)
        verdict = envelope.check(headers, body)
        if isinstance(verdict, envelope.Refuse):
            return self._refuse(verdict.error)
        if isinstance(verdict, envelope.Ack):
            return self._acknowledge(verdict)
        if verdict.document is not None:
            environ[DOCUMENT_KEY] = verdict.document
        environ["wsgi.input"] = io.BytesIO(verdict.body)
        environ["CONTENT_LENGTH"] = str(len(verdict.body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        return verdict

    def _refuse(self, error: InvalidEventError) -> flask.Response:
        with logs.bind(source=self.source):
            logger.warning(
                "refused %s delivery: %d %s",
                self.source,
                error.status,
                error.message,
                extra={"error": error.to_json()},
            )
        return json_response(error.to_json(), error.status)

    def _acknowledge(self, ack: envelope.Ack) -> flask.Response:
        from khook_core.transport.pubsub import STATS

        invalid = STATS.count("invalid")
        with logs.bind(source=self.source, pubsub_message_id=ack.message_id):
            logger.warning(
                "acknowledging undeliverable %s push %s: %s",
                self.source,
                ack.message_id or "(no messageId)",
                ack.reason,
                extra={
                    "error": {"error": ack.reason, "field": ack.field},
                    "invalid_messages": invalid,
                },
            )
        return json_response(
            {
                "acknowledged": True,
                "error": ack.reason,
                "field": ack.field,
                "message_id": ack.message_id,
            },
            200,
        )


def _delivery_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The headers ``envelope.check`` reads (the content type and, of a binary CloudEvent, the
    ``ce-`` ones), with lower-case names, straight from the WSGI environ: not every header of
    every request. Without ``ce-specversion`` the check reads no other ``ce-`` header."""
    headers = (
        {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_CE_")
        }
        if "HTTP_CE_SPECVERSION" in environ
        else {}
    )
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _content_length(environ: WSGIEnvironment) -> int | None:
    try:
        value = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _read_limited(stream: DeadlineStream, limit: int) -> bytes | None:
    """The body, or None once it is over ``limit`` (reading stops one byte past it)."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(READ_CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return None if total > limit else b"".join(chunks)
