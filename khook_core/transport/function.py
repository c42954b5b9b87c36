"""A function's cold start, the same for every ``functions/<name>/main.py``.

The import of ``main.py`` is the cold start: ``start`` reads the settings tree from the
environment (the function's one read), configures logging, loads and checks the configuration
(``runtime.start_function``: a bad config or a missing source fails the start, not every
request) and wraps the app functions-framework is creating (``guard``). It imports nothing a
function did not already import, so the cold-start budget is unchanged.

Example (``functions/kafka/main.py``)::

    function.start("kafka", signature="cloudevent")

    @functions_framework.cloud_event
    def handle(cloud_event: CloudEvent) -> None:
        handle_pubsub("kafka", cloud_event, parse=parse_text)
"""

from __future__ import annotations

from khook_core import logs, runtime
from khook_core.settings import Settings
from khook_core.transport import guard


def start(name: str, *, signature: guard.Signature, serves_source: bool = True) -> Settings:
    """Start the function ``name`` (its source, unless ``serves_source`` is False: the sweep).

    Returns:
        The settings tree, read once; requests get it through ``runtime.get_runtime()``.

    Raises:
        ConfigError: an invalid variable, or every problem of the configuration directory.
        PluginLoadError: the function's source cannot be served (not installed, disabled,
            broken).
    """
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    runtime.start_function(settings, name if serves_source else None)
    guard.install_current(
        source=name, signature=signature, body_read_timeout=settings.body_read_timeout
    )
    return settings
