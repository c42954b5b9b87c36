"""Cloud Function: Prometheus Alertmanager webhook receiver (HTTP, ``webhook_configs``).

Glue only; ``khook_core.transport.http`` checks method, type, size and the bearer token
(``KHOOK_ALERTMANAGER_TOKEN``), runs the pipeline and answers: 200 with a summary, 4xx for bad
requests, 503 when a transient failure should make Alertmanager retry.
"""

import flask
import functions_framework

from khook_core import logs, runtime
from khook_core.settings import Settings
from khook_core.transport import guard, http

_settings = Settings.from_env()
logs.configure(_settings.log_format, _settings.log_level)
runtime.start_function(_settings, "alertmanager")  # a bad config fails the cold start
guard.install_current(
    source="alertmanager", signature="http", body_read_timeout=_settings.body_read_timeout
)


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """One Alertmanager notification (an alert group): one event per alert."""
    return http.serve(request, "alertmanager")
