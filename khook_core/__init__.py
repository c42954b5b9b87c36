"""khook serverless: operational events in, safe and deduplicated agent prompts out.

The stable public surface; everything else may move between releases. Names are imported on
first use (PEP 562), so ``import khook_core.<module>`` in a function costs only that module:
cold start is a feature.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from khook_core.decisions import Decision
    from khook_core.dispatch.base import Dispatcher, DispatchRequest, DispatchResult
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
    from khook_core.pipeline import run_pipeline
    from khook_core.runtime import Runtime, get_runtime
    from khook_core.sources.base import Dropped, EventSource, SourceContext
    from khook_core.state.base import StateStore
    from khook_core.target import Target

_EXPORTS = {
    "AuthError": "khook_core.errors",
    "ConfigError": "khook_core.errors",
    "Decision": "khook_core.decisions",
    "DispatchError": "khook_core.errors",
    "DispatchRequest": "khook_core.dispatch.base",
    "DispatchResult": "khook_core.dispatch.base",
    "Dispatcher": "khook_core.dispatch.base",
    "Dropped": "khook_core.sources.base",
    "Event": "khook_core.event",
    "EventSource": "khook_core.sources.base",
    "HookRule": "khook_core.hooks",
    "HookSet": "khook_core.hooks",
    "InvalidEventError": "khook_core.errors",
    "KhookError": "khook_core.errors",
    "PluginLoadError": "khook_core.errors",
    "Resource": "khook_core.event",
    "Runtime": "khook_core.runtime",
    "Severity": "khook_core.event",
    "SourceContext": "khook_core.sources.base",
    "StateStore": "khook_core.state.base",
    "Target": "khook_core.target",
    "TransientError": "khook_core.errors",
    "get_runtime": "khook_core.runtime",
    "run_pipeline": "khook_core.pipeline",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'khook_core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
