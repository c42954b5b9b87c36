"""Event sources: the plugin contract, the registry and the built-in sources."""

from khook_core.sources.base import Dropped, EventSource, SourceContext

__all__ = ["Dropped", "EventSource", "SourceContext"]
