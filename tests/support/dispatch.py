"""Builders shared by the dispatch tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from khook_core.dispatch.base import DispatchRequest, Target
from khook_core.event import Event, EventId, Resource, Severity
from khook_core.settings import DispatchSettings
from khook_core.state.base import DedupKey

NOW = datetime(2026, 1, 5, 10, 31, 12, tzinfo=UTC)
PROMPT = "Pod web-0 in shop restarted: BackOff. Find the cause."


def make_event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "id": EventId("kubernetes:7c1e7"),
        "source": "kubernetes",
        "type": "pod-restart",
        "severity": Severity.WARNING,
        "resource": Resource(kind="Pod", name="web-0", namespace="shop"),
        "reason": "BackOff",
        "message": "Back-off restarting failed container app",
        "timestamp": NOW,
        "count": 7,
    }
    fields.update(changes)
    return Event(**fields)


def make_request(
    target: Target,
    *,
    prompt: str = PROMPT,
    message_id: str = "khook-msg-1",
    context_id: str = "khook-ctx-1",
    event: Event | None = None,
    time_budget: float | None = None,
) -> DispatchRequest:
    return DispatchRequest(
        event=event or make_event(),
        hook="shop/web-restarts",
        target=target,
        prompt=prompt,
        key=DedupKey("shop/web-restarts|kubernetes|pod-restart|shop/Pod/web-0|"),
        message_id=message_id,
        context_id=context_id,
        time_budget=time_budget,
    )


def fast_settings(**changes: Any) -> DispatchSettings:
    """Settings with short waits, so retry and timeout paths run in milliseconds."""
    values: dict[str, Any] = {
        "dispatch_backoff": 0.01,
        "dispatch_max_backoff": 0.05,
        "kagent_api_timeout": 5.0,
        "connect_timeout": 1.0,
        "webhook_timeout": 5.0,
    }
    values.update(changes)
    return DispatchSettings(**values)
