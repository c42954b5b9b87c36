"""Dispatchers: deliver rendered prompts to agents and webhooks."""

from __future__ import annotations

from khook_core.dispatch.base import Dispatcher, DispatchRequest, DispatchResult, Target

__all__ = ["DispatchRequest", "DispatchResult", "Dispatcher", "Target", "build_dispatcher"]


def build_dispatcher(mode: str) -> Dispatcher:
    """``dry-run``, or ``auto``: each hook's target decides (A2A agent, A2A URL, webhook)."""
    if mode == "dry-run":
        from khook_core.dispatch.dryrun import DryRunDispatcher

        return DryRunDispatcher()
    from khook_core.dispatch.routing import RoutingDispatcher

    return RoutingDispatcher.from_env()
