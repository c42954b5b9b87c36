"""Cloud Function: Cloud Monitoring incidents and Cloud Build status messages (Pub/Sub push).

Glue only; ``khook_core.transport.pubsub`` decodes the CloudEvent and applies the failure rule.
One deployment serves two push subscriptions: the notification channel's topic and
``cloud-builds``; the ``gcp`` source tells the two payloads apart.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import transport
from khook_core.transport.pubsub import handle_pubsub

transport.start("gcp", signature="cloudevent")  # a bad config fails the cold start


@transport.serve_pushes  # a checked push delivery skips the framework's dispatch
@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One incident notification or one Cloud Build status change."""
    handle_pubsub("gcp", cloud_event)
