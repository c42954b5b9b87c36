"""Cloud Function: the console (HTTP), a query API (its one write: deciding an approval) and
the dashboard page over it.

Glue only; ``khook_core.console.api`` routes, checks the client (loopback only unless
``KHOOK_CONSOLE_ALLOW_REMOTE``) and the optional bearer token (``KHOOK_CONSOLE_TOKEN``), and
answers JSON. The state store is opened on the first API request.
"""

import flask
import functions_framework

from khook_core import runtime, transport
from khook_core.console import api

# Serves no source of its own; a bad config fails the cold start.
_settings = transport.start("console", signature="http", serves_source=False)


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """One console request: the page, a static file or an API call."""
    return api.serve(request, runtime.get_runtime, _settings.console)
