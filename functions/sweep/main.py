"""Cloud Function: the scheduled sweep that gives quiet groups' held-back events their run.

Glue only; ``khook_core.transport.tick`` runs one ``pipeline.sweep`` pass per Cloud Scheduler
tick (published to this function's topic) and always acknowledges: the next tick is the retry.
"""

import functions_framework
from cloudevents.http import CloudEvent

from khook_core import logs, runtime
from khook_core.settings import Settings
from khook_core.transport import guard
from khook_core.transport.tick import handle_tick

_settings = Settings.from_env()
logs.configure(_settings.log_format, _settings.log_level)
runtime.start_function(_settings, None)  # a bad config fails the cold start
guard.install_current(
    source="sweep", signature="cloudevent", body_read_timeout=_settings.body_read_timeout
)


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """One tick: sweep the backlogs whose window has passed and whose budget allows a run."""
    handle_tick(cloud_event)
