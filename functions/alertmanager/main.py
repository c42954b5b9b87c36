"""Cloud Function: Prometheus Alertmanager webhook receiver (HTTP, ``webhook_configs``).

Glue only; ``khook_core.transport.http`` checks method, type, size and the bearer token
(``KHOOK_ALERTMANAGER_TOKEN``), runs the pipeline and answers: 200 with a summary, 4xx for bad
requests, 503 when a transient failure should make Alertmanager retry.
"""

import flask
import functions_framework

from khook_core import transport
from khook_core.transport import http

transport.start("alertmanager", signature="http")  # a bad config fails the cold start


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """One Alertmanager notification (an alert group): one event per alert."""
    return http.serve(request, "alertmanager")
