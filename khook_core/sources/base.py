"""The contract every event source implements, built-in or third-party.

A source is a class registered under the entry-point group ``khook.sources``. Its class
attributes describe it before it is constructed (``khook sources`` lists them); the registry
builds one instance per process with the validated settings from ``config/plugins.yaml`` and a
``SourceContext``.

Example::

    class MySource:
        name = "my-source"
        version = "1.0.0"
        event_types = ("thing-broke",)
        config_model = None

        def __init__(self, config: None, context: SourceContext) -> None:
            self.context = context

        def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
            ...
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, runtime_checkable

from pydantic import BaseModel

from khook_core.errors import InvalidEventError
from khook_core.sources.jsonwords import json_type

if TYPE_CHECKING:
    from khook_core.event import Event
    from khook_core.mapping import MappingTable

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""The request-body limit a source served over HTTP offers as its ``maxBodyBytes`` default.

The same 1 MiB as ``khook_core.transport.http``, which sources never import; a source passes
its configured limit back through ``http_options(path)``.
"""


class Dropped(Exception):
    """Raised by ``normalize`` when a valid payload deliberately yields no event.

    ``reason`` becomes the pipeline decision ``dropped:<reason>`` (for example ``stale``,
    ``normal``, ``unmapped-reason``), so every dropped payload is explained and counted.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SourceContext:
    """What a source may consult while normalising: the clock and the mapping table."""

    clock: Callable[[], datetime]
    mapping: "MappingTable"


@runtime_checkable
class EventSource(Protocol):
    """A source plugin.

    Attributes:
        name: the source name used in mappings, hooks, Pub/Sub attributes and the CLI.
        version: the plugin's version, shown by ``khook sources``.
        event_types: the kebab-case event types this source can emit.
        config_model: a pydantic model validating the plugin's ``config:`` block, or None.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]]
    config_model: ClassVar[type[BaseModel] | None]

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> "list[Event]":
        """Turn one raw payload into zero, one or many events.

        Args:
            raw: the decoded payload (usually parsed JSON).
            attributes: transport metadata (Pub/Sub attributes, HTTP headers), lower-case keys.

        Returns:
            The events, each with a stable ``id``.

        Raises:
            InvalidEventError: the payload is malformed; never any other exception.
            Dropped: the payload is valid but deliberately produces no event.
        """
        ...


PUBSUB_MESSAGE_ID = "pubsub.message_id"
PUBSUB_TOPIC = "pubsub.topic"
"""Attributes the Pub/Sub transport adds to a message's own: where the payload came from."""


def pubsub_ref(attributes: Mapping[str, str]) -> str:
    """``pubsub:TOPIC/MESSAGE_ID`` for ``Event.raw_ref``, or "" outside a Pub/Sub delivery."""
    message_id = attributes.get(PUBSUB_MESSAGE_ID, "")
    if not message_id:
        return ""
    return f"pubsub:{attributes.get(PUBSUB_TOPIC, '') or '?'}/{message_id}"


def require_mapping(raw: Any, what: str) -> dict[str, Any]:
    """Return ``raw`` as a dict or raise ``InvalidEventError`` naming what was expected."""
    if not isinstance(raw, dict):
        raise InvalidEventError(f"expected an object ({what}), got {json_type(raw)}")
    return raw
