"""khook serverless: operational events in, safe and deduplicated agent prompts out.

The stable public surface; everything else may move between releases.
"""

from khook_core.dispatch.base import Dispatcher, DispatchRequest, DispatchResult, Target
from khook_core.errors import (
    AuthError,
    ConfigError,
    DispatchError,
    InvalidEventError,
    KhookError,
    PluginLoadError,
    TransientError,
)
from khook_core.event import Event, Resource, Severity
from khook_core.hooks import HookRule, HookSet
from khook_core.pipeline import Decision, run_pipeline
from khook_core.runtime import Runtime, get_runtime
from khook_core.sources.base import Dropped, EventSource, SourceContext
from khook_core.state.base import StateStore

__all__ = [
    "AuthError",
    "ConfigError",
    "Decision",
    "DispatchError",
    "DispatchRequest",
    "DispatchResult",
    "Dispatcher",
    "Dropped",
    "Event",
    "EventSource",
    "HookRule",
    "HookSet",
    "InvalidEventError",
    "KhookError",
    "PluginLoadError",
    "Resource",
    "Runtime",
    "Severity",
    "SourceContext",
    "StateStore",
    "Target",
    "TransientError",
    "get_runtime",
    "run_pipeline",
]
