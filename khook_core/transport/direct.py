"""A checked Pub/Sub push delivery handed straight to the function, answered as the framework would.

By the time the guard passes a push envelope on, it has read the body under its deadline,
parsed it strictly and checked every field the conversion reads (``envelope.check``). Through
functions-framework the delivery would then take a Flask request and app context, URL routing,
a CloudEvents parse of the body that is bound to fail (a push envelope is not a CloudEvent), an
execution id, and an ``OK`` response rewritten to JSON: over half of a request's instructions
on the storm mix, none of it a check. ``Direct.serve`` keeps what shapes the outcome: the
framework's own conversion of the same document into the CloudEvent (``event_conversion``),
the call, and the framework's answer to it byte for byte (200, ``application/json``,
``{"status": 200, "acknowledged": true}``). An exception goes through the app's own error
handling inside a request context, as from the framework's view: Flask's log line, khook's
JSON 500 with ``X-Google-Status: crash``, the teardown.

It serves only where that answer is exactly the framework's: a plain path (letters, digits,
``._~-`` segments; the path names the topic, as the framework reads it), no ``LOG_EXECUTION_ID``
(the framework's execution-id logging), no request hooks or Flask signal receivers beyond
khook's own, no test client keeping contexts. Anything else takes the framework's path.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import flask
from flask import signals
from functions_framework import event_conversion

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_PLAIN_PATH: Final = re.compile(r"/(?:[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*)?")
"""Paths the framework routes to the function as they are (no empty segment, no escape, no
trailing slash: those are redirected or decoded first)."""
_SIGNALS: Final = (
    signals.request_started,
    signals.request_finished,
    signals.request_tearing_down,
    signals.appcontext_pushed,
    signals.appcontext_popped,
    signals.appcontext_tearing_down,
)
"""What a framework dispatch would send; a receiver of any of them takes the framework's path."""
PRESERVE_CONTEXT: Final = "werkzeug.debug.preserve_context"


class _PushRequest:
    """What ``event_conversion`` reads of a request: its JSON document and its path."""

    __slots__ = ("_document", "path")

    def __init__(self, document: Any, path: str) -> None:
        self._document = document
        self.path = path

    def get_json(self) -> Any:
        return self._document


class Direct:
    """The function ``function`` of ``app``, called without the framework's dispatch.

    Args:
        app: the function's Flask app (its error handlers answer an exception).
        function: the function functions-framework serves (the module's target).
        acknowledgement: the JSON body the app answers a handled delivery with.
        expected_after: the after-request hooks the app may have (khook's own).
    """

    def __init__(
        self,
        app: flask.Flask,
        function: Callable[[Any], object],
        *,
        acknowledgement: bytes,
        expected_after: list[Callable[..., Any]],
    ) -> None:
        self.app = app
        self.function = function
        self._body = [acknowledgement]
        self._headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(acknowledgement))),
        ]
        self._expected_after = expected_after
        self._ready: bool | None = None

    def usable(self, environ: WSGIEnvironment) -> bool:
        """Whether this request would get exactly the framework's answer through ``serve``."""
        if self._ready is None:
            self._ready = self._app_is_plain()
        if not self._ready or PRESERVE_CONTEXT in environ:
            return False
        for signal in _SIGNALS:  # a loop, not any(): no generator a request
            if signal.receivers:
                return False
        return _PLAIN_PATH.fullmatch(environ.get("PATH_INFO", "")) is not None

    def _app_is_plain(self) -> bool:
        """The framework serves this function (the app is named for its target), and no
        request hook but khook's own: a dispatch would run nothing else around the call."""
        app = self.app
        return (
            app.import_name == getattr(self.function, "__name__", None)
            and not any(app.before_request_funcs.values())
            and not any(app.teardown_request_funcs.values())
            and not any(app.url_value_preprocessors.values())
            and not app.teardown_appcontext_funcs
            and {k: v for k, v in app.after_request_funcs.items() if v}
            == ({None: self._expected_after} if self._expected_after else {})
        )

    def serve(
        self, environ: WSGIEnvironment, start_response: StartResponse, document: Any
    ) -> Iterable[bytes] | None:
        """Call the function with the push envelope ``document`` as its CloudEvent and answer.

        Returns None, having called nothing, when the framework's conversion refuses the
        document: the framework's path then answers it as it would.
        """
        try:
            event = event_conversion.background_event_to_cloud_event(
                _PushRequest(document, environ["PATH_INFO"])
            )
        except Exception:  # the framework's path answers it (its 400)
            return None
        self.app._got_first_request = True  # as a dispatch marks it: late set-up is refused
        try:
            self.function(event)
        except Exception as exc:
            return self._failed(environ, start_response, exc)
        start_response("200 OK", self._headers[:])
        return self._body

    def _failed(
        self, environ: WSGIEnvironment, start_response: StartResponse, exc: Exception
    ) -> Iterable[bytes]:
        """Flask's answer to an exception from the view (``wsgi_app`` and
        ``full_dispatch_request``): called while ``exc`` is being handled, which Flask's
        ``handle_user_exception`` re-raises when no handler takes it."""
        app = self.app
        ctx = app.request_context(environ)
        error: BaseException | None = None
        try:
            try:
                ctx.push()
                response = app.finalize_request(app.handle_user_exception(exc))
            except Exception as e:
                error = e
                response = app.handle_exception(e)
            except BaseException:
                error = sys.exc_info()[1]
                raise
            return response(environ, start_response)
        finally:
            if error is not None and app.should_ignore_error(error):
                error = None
            ctx.pop(error)
