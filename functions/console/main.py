"""Cloud Function: the console (HTTP), a read-only query API and the dashboard page over it.

Glue only; ``khook_core.console.api`` routes, checks the client (loopback only unless
``KHOOK_CONSOLE_ALLOW_REMOTE``) and the optional bearer token (``KHOOK_CONSOLE_TOKEN``), and
answers JSON. The state store is opened on the first API request.
"""

import flask
import functions_framework

from khook_core import logs, runtime
from khook_core.console import api
from khook_core.console.settings import ConsoleSettings
from khook_core.settings import Settings
from khook_core.transport import guard

_settings = Settings.from_env()
_console = ConsoleSettings.from_env()
logs.configure(_settings.log_format, _settings.log_level)
runtime.start_function(_settings, None)  # a bad config fails the cold start
guard.install_current(
    source="console", signature="http", body_read_timeout=_settings.body_read_timeout
)


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """One console request: the page, a static file or an API call."""
    return api.serve(request, runtime.get_runtime, _console)
