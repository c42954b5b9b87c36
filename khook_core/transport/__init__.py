"""Transports: turning a delivery (a Pub/Sub push, an HTTP request) into a payload and back.

Each module decodes one transport's envelope and answers in that transport's terms, so the
functions' ``main.py`` files stay a few lines of glue and share one behaviour. ``start`` is the
cold start they share; it lives here, with its imports inside, so a function imports no module
for it that it did not import already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from khook_core.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def start(
    name: str, *, signature: Literal["http", "cloudevent"], serves_source: bool = True
) -> Settings:
    """Start the function ``name``: the import of its ``main.py`` is the cold start.

    Reads the settings tree from the environment (the function's one read), configures logging,
    loads and checks the configuration (``runtime.start_function``: a bad config, or the
    function's source missing, fails the start instead of every request), wraps the app
    functions-framework is creating (``guard.install_current``) and freezes what the start
    built (``gc.freeze``): those objects live as long as the instance, and each full collection
    the state's growth triggers would otherwise walk all of them (some 60,000; tens of ms).

    Args:
        name: the function, and the source it serves unless ``serves_source`` is False (the
            sweep serves none).
        signature: the function's functions-framework signature type.

    Returns:
        The settings tree; requests get it through ``runtime.get_runtime()``.

    Raises:
        ConfigError: an invalid variable, or every problem of the configuration directory.
        PluginLoadError: the function's source cannot be served (not installed, disabled,
            broken).

    Example (``functions/kafka/main.py``)::

        transport.start("kafka", signature="cloudevent")

        @transport.serve_pushes
        @functions_framework.cloud_event
        def handle(cloud_event: CloudEvent) -> None:
            handle_pubsub("kafka", cloud_event, parse=parse_text)
    """
    import gc

    from khook_core import logs, runtime
    from khook_core.settings import Settings
    from khook_core.transport import guard

    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    runtime.start_function(settings, name if serves_source else None)
    guard.install_current(
        source=name, signature=signature, body_read_timeout=settings.body_read_timeout
    )
    gc.freeze()  # no collect first: the start leaves a few dozen cyclic objects, a collect ~20 ms
    return settings


def serve_pushes(function: F) -> F:
    """Decorator for a CloudEvent function's target: a Pub/Sub push delivery the guard has
    checked calls it directly with the CloudEvent functions-framework would build, and gets
    the framework's answer, without the framework's dispatch around it (``direct``); any
    other request, and every request where that answer could differ, takes the framework's
    path. A no-op when ``main.py`` is imported on its own.

    Example (``functions/kubernetes/main.py``)::

        @transport.serve_pushes
        @functions_framework.cloud_event
        def handle(cloud_event: CloudEvent) -> None:
            handle_pubsub("kubernetes", cloud_event)
    """
    from khook_core.transport import guard

    return guard.direct_current(function)
