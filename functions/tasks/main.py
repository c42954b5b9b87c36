"""Cloud Function: receives the A2A push notifications of the agent tasks khook follows.

Glue only; ``khook_core.tracking.notifications`` checks each notification's per-task token and
writes the task's change once (duplicates and reordering are harmless). Its public URL is
``KHOOK_TRACK_PUSH_URL``, which dispatches give agents that advertise push notifications.
"""

import flask
import functions_framework

from khook_core import runtime, transport
from khook_core.tracking import notifications

# Serves no source of its own; a bad config fails the cold start.
transport.start("tasks", signature="http", serves_source=False)


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """One notification: 200 applied or ignored, 400 malformed, 401 wrong token, 404 unknown."""
    status, body = notifications.receive(
        runtime.get_runtime(),
        agent=request.args.get("agent", ""),
        token=request.headers.get(notifications.TOKEN_HEADER, ""),
        body=request.get_data(),
    )
    response = flask.jsonify(body)
    response.status_code = status
    return response
