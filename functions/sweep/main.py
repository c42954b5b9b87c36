"""Cloud Function: the scheduled sweep that gives quiet groups' held-back events their run.

Glue only; ``khook_core.transport.tick`` runs one ``pipeline.sweep`` pass per Cloud Scheduler
tick (published to this function's topic) and always acknowledges: the next tick is the retry.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import transport
from khook_core.transport.tick import handle_tick

# No source of its own; a bad config fails the cold start.
transport.start("sweep", signature="cloudevent", serves_source=False)


@transport.serve_pushes  # a checked push delivery skips the framework's dispatch
@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One tick: sweep the backlogs whose window has passed and whose budget allows a run."""
    handle_tick(cloud_event)
