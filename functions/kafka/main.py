"""Cloud Function: Kafka records bridged to Pub/Sub by the Kafka Connect Pub/Sub sink.

Glue only; ``khook_core.transport.pubsub`` decodes the CloudEvent and applies the failure rule.
The data is handed over as text: record values need not be JSON, and an empty value is a
dropped record, not a broken message.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import transport
from khook_core.transport.pubsub import handle_pubsub, parse_text

transport.start("kafka", signature="cloudevent")  # a bad config fails the cold start


@transport.serve_pushes  # a checked push delivery skips the framework's dispatch
@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One Kafka record (``kafka.topic/partition/offset`` attributes: ``metadata.publish=true``)."""
    handle_pubsub("kafka", cloud_event, parse=parse_text)
