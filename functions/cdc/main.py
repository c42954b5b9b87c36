"""Cloud Function: database change events (Debezium Server's Pub/Sub sink, or wal2json output).

Glue only; ``khook_core.transport.pubsub`` decodes the CloudEvent and applies the failure rule.
The data is handed over as text so that a tombstone (empty data) is dropped by the source with
its reason instead of being logged as an invalid message.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import logs, runtime
from khook_core.settings import Settings
from khook_core.transport import guard
from khook_core.transport.pubsub import handle_pubsub, parse_text

_settings = Settings.from_env()
logs.configure(_settings.log_format, _settings.log_level)
runtime.start_function(_settings, "cdc")  # a bad config fails the cold start
guard.install_current(
    source="cdc", signature="cloudevent", body_read_timeout=_settings.body_read_timeout
)


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One change message: a Debezium event, a wal2json transaction (v1) or tuple (v2)."""
    handle_pubsub("cdc", cloud_event, parse=parse_text)
