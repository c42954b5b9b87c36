"""A scheduled tick (Cloud Scheduler → Pub/Sub → the ``sweep`` function): one sweep pass.

The message itself carries nothing; its arrival is the clock. The answer is always an
acknowledgement: the next tick is the retry, and a redelivered tick would only sweep again.
A configuration that cannot load raises like every function's, so the error is visible.

Example::

    @transport.serve_pushes
    @functions_framework.cloud_event
    def handle(cloud_event: CloudEvent) -> None:
        handle_tick(cloud_event)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

from khook_core import logs
from khook_core.errors import TransientError
from khook_core.pipeline import Decision, sweep
from khook_core.tracking import tracker

if TYPE_CHECKING:
    from khook_core.runtime import Runtime
    from khook_core.transport.pubsub import CloudEventLike

logger = logging.getLogger(__name__)


def handle_tick(cloud_event: CloudEventLike, *, runtime: Runtime | None = None) -> list[Decision]:
    """Sweep the backlogs once; log each run and a one-line tally. Never asks for redelivery."""
    started = time.monotonic()
    tick = str(cloud_event.get("id") or "")
    with logs.bind(source="sweep", pubsub_message_id=tick):
        if runtime is None:
            from khook_core.liveconfig.reload import current_runtime

            runtime = current_runtime(None)  # the live configuration
        try:
            decisions = sweep(
                runtime=runtime, deadline=started + runtime.settings.invocation_budget
            )
        except TransientError as exc:
            logger.warning(
                "sweep tick %s: state store unavailable, next tick retries: %s", tick, exc
            )
            return []
        for decision in decisions:
            logger.info(
                "sweep %s: %s (%s)%s",
                decision.key,
                decision.decision,
                decision.hook,
                f": {decision.detail}" if decision.detail else "",
            )
        tally = Counter(d.decision for d in decisions)
        logger.info(
            "sweep tick %s: %s",
            tick,
            ", ".join(f"{n} {what}" for what, n in sorted(tally.items())) or "nothing held",
        )
        track_tasks(runtime, tick, started + runtime.settings.invocation_budget)
        expire_approvals(runtime, tick)
        return decisions


def track_tasks(runtime: Runtime, tick: str, deadline: float) -> None:
    """Follow the dispatched agent tasks that are due (``khook_core.tracking``), after the
    sweep's runs, in what is left of the tick."""
    try:
        tracked = tracker.tick(runtime, deadline=deadline)
    except TransientError as exc:
        logger.warning("sweep tick %s: task store unavailable, next tick retries: %s", tick, exc)
        return
    if set(tracked) - {"open", "raced"}:  # an open task is no news on every tick
        logger.info(
            "sweep tick %s, tasks: %s",
            tick,
            ", ".join(f"{n} {what}" for what, n in sorted(tracked.items())),
        )


def expire_approvals(runtime: Runtime, tick: str) -> None:
    """Reject the approvals past their deadline (``khook_core.approvals``), after the tasks."""
    from khook_core.approvals.deciding import expire_due

    try:
        expired = expire_due(runtime, runtime.clock())
    except TransientError as exc:
        logger.warning(
            "sweep tick %s: approval store unavailable, next tick retries: %s", tick, exc
        )
        return
    if expired:
        logger.info(
            "sweep tick %s, approvals: %s",
            tick,
            ", ".join(f"{n} {what}" for what, n in sorted(expired.items())),
        )
