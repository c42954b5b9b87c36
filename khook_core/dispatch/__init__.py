"""Dispatchers: deliver rendered prompts to agents and webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from khook_core.dispatch.base import Dispatcher, DispatchRequest, DispatchResult, Target

if TYPE_CHECKING:
    from khook_core.settings import Settings

__all__ = ["DispatchRequest", "DispatchResult", "Dispatcher", "Target", "build_dispatcher"]


def build_dispatcher(settings: Settings) -> Dispatcher:
    """``KHOOK_DISPATCH``: ``dry-run``, or ``auto``: each hook's target decides (A2A agent,
    A2A URL, webhook), with the dispatch settings and the environment of ``settings``."""
    if settings.dispatch == "dry-run":
        from khook_core.dispatch.dryrun import DryRunDispatcher

        return DryRunDispatcher()
    from khook_core.dispatch.routing import RoutingDispatcher

    return RoutingDispatcher.from_settings(settings)
