"""Cloud Function: Kubernetes Events from the forwarder's Pub/Sub topic, into the pipeline.

Glue only; ``khook_core.transport.pubsub`` decodes, runs the pipeline and applies the failure
rule (invalid: logged and acknowledged; transient: raised for redelivery). Imports neither the
kubernetes client nor the Pub/Sub client: the message is plain JSON.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import transport
from khook_core.transport.pubsub import handle_pubsub

transport.start("kubernetes", signature="cloudevent")  # a bad config fails the cold start


@transport.serve_pushes  # a checked push delivery skips the framework's dispatch
@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One Pub/Sub delivery in the forwarder's message contract (or any same-shaped message)."""
    handle_pubsub("kubernetes", cloud_event)
