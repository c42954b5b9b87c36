"""Cloud Function: database change events (Debezium Server's Pub/Sub sink, or wal2json output).

Glue only; ``khook_core.transport.pubsub`` decodes the CloudEvent and applies the failure rule.
The data is handed over as text so that a tombstone (empty data) is dropped by the source with
its reason instead of being logged as an invalid message.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import transport
from khook_core.transport.pubsub import handle_pubsub, parse_text

transport.start("cdc", signature="cloudevent")  # a bad config fails the cold start


@transport.serve_pushes  # a checked push delivery skips the framework's dispatch
@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One change message: a Debezium event, a wal2json transaction (v1) or tuple (v2)."""
    handle_pubsub("cdc", cloud_event, parse=parse_text)
