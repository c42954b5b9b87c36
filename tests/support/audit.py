"""An audit record builder shared by the audit-log suites."""

from __future__ import annotations

from datetime import UTC, datetime

from khook_core.state.base import DedupKey, Firing

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
KEY = DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|")


def firing(event_id: str, *, hook: str = "shop/web", at: datetime = NOW, **changes: str) -> Firing:
    values = {"outcome": "dispatched", "task_id": f"task-{event_id}", "error": ""}
    values.update(changes)
    return Firing(
        key=KEY,
        hook=hook,
        event_id=event_id,
        event_type="pod-restart",
        source="kubernetes",
        resource="shop/Pod/web-0",
        agent="kagent/k8s-agent",
        prompt_hash="abc123",
        at=at,
        extra={"state": "submitted"},
        **values,
    )
