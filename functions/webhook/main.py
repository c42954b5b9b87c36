"""Cloud Function: generic and GitHub webhooks (HTTP), one endpoint per path segment.

Glue only; ``khook_core.transport.http`` checks method, type, size and the bearer token or HMAC
signature (``KHOOK_WEBHOOK_TOKEN``, ``KHOOK_WEBHOOK_HMAC_SECRET``), runs the pipeline and answers
with the status of the first failed check or a 200 summary.
"""

import flask
import functions_framework

from khook_core import transport
from khook_core.transport import http

transport.start("webhook", signature="http")  # a bad config fails the cold start


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """One webhook delivery: ``/`` (generic or GitHub, detected), ``/github``, ``/<endpoint>``."""
    return http.serve(request, "webhook")
