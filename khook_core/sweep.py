"""The sweep: the runs that held-back events are owed when no later event came to carry them.

Storm control summarises held events in their group's (or hook's) next run, and that run
normally comes with the next event. When a storm just stops, nothing comes: the sweep, called
on a schedule, gives each such backlog its run once the group's window has passed and the
budget allows, through the same admission (circuit, window, budgets, probe) and the same run
(render, dispatch, record) as an event's firing. What a silence or maintenance window held back
(``BacklogKind.SILENCE``) is due once it has ended: one run per hook and silence.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

from khook_core import correlation, firing
from khook_core.decisions import Decision, DecisionKind, DropReason
from khook_core.errors import TransientError
from khook_core.event import Event
from khook_core.firing import MIN_DISPATCH_S, Attempt
from khook_core.silencing import held as silence_held
from khook_core.storm import admission, keys, records
from khook_core.storm.records import BacklogKind

if TYPE_CHECKING:
    from khook_core.runtime import Runtime
    from khook_core.state.base import BacklogStore
    from khook_core.storm.records import Backlog, BacklogKey

logger = logging.getLogger(__name__)

SWEEP_BATCH = 200
"""Backlogs one sweep looks at; the rest wait for the next tick (a tick must fit a function's
timeout, and a sweep run costs one dispatch)."""


def sweep(
    *, runtime: Runtime, limit: int = SWEEP_BATCH, deadline: float | None = None
) -> list[Decision]:
    """Start the runs that held-back events are owed but no later event came to carry.

    A backlog that is not yet due is put back untouched. Only runs (dispatched or failed) are
    recorded in the audit trail; skips are returned for the caller to report.

    Raises:
        TransientError: the backlogs could not be listed (the next tick tries again).
    """
    decisions: list[Decision] = []
    backlogs = runtime.store.backlog_keys(limit=limit)
    # Groups first: a group's run also carries its hook's budget backlog, one run for both.
    ordered = sorted(backlogs, key=lambda k: k.kind is not BacklogKind.GROUP)
    for done, key in enumerate(ordered):
        if deadline is not None and deadline - time.monotonic() < MIN_DISPATCH_S:
            logger.warning(
                "sweep: the invocation's time budget is spent; %d backlog(s) left "
                "for the next tick",
                len(ordered) - done,
            )
            break
        try:
            decision = _sweep_one(key, runtime, deadline)
        except TransientError as exc:
            logger.warning("sweep of %s: state store unavailable: %s", key, exc)
            decision = Decision(
                DecisionKind.FAILED_STATE_UNAVAILABLE,
                key=key.stored,
                detail=str(exc),
                retryable=True,
            )
        if decision is not None:
            decisions.append(decision)
    if correlation.enabled(runtime):  # incidents: close the quiet ones, send due follow-ups
        try:
            decisions.extend(correlation.follow_ups(runtime, deadline))
        except TransientError as exc:
            logger.warning("sweep of incidents: state store unavailable: %s", exc)
    return decisions


def _sweep_one(key: BacklogKey, runtime: Runtime, deadline: float | None) -> Decision | None:
    store = runtime.store
    if key.kind is BacklogKind.SILENCE and not runtime.silences.ended(
        keys.muting_of(key), runtime.clock(), runtime.config.windows
    ):
        return None  # still in force: its run comes once it has ended
    backlog = store.take_backlog(key=key)
    if backlog is None:  # a run took it since the listing
        return None
    try:
        event = Event.model_validate_json(backlog.event)
    except ValueError as exc:
        logger.error("sweep: backlog %s holds no readable event (%s); dropped", key, exc)
        return Decision.dropped(DropReason.UNREADABLE_BACKLOG, key=key.stored, detail=str(exc))
    rule = next((r for r in runtime.config.hooks.match(event) if r.hook == backlog.hook), None)
    if rule is None:  # the hook was removed or changed since it held these events
        logger.warning(
            "sweep: %d held event(s) of %s dropped: hook %s no longer matches",
            backlog.summary.count,
            key,
            backlog.hook,
        )
        return Decision.dropped(
            DropReason.HOOK_GONE,
            event,
            hook=backlog.hook,
            key=key.stored,
            detail=f"{backlog.summary.count} held event(s)",
        )
    run_key = keys.sweep_run(key, json.dumps(backlog.summary.to_json()))
    attempt = Attempt(runtime, rule, event, run_key, deadline)
    try:
        attempt.incident = correlation.incident_of(rule, event, runtime)  # its conversation
        return _sweep_run(attempt, key, backlog)
    except TransientError:
        with contextlib.suppress(TransientError):  # the store is failing; try to keep them
            store.add_backlog(key=key, backlog=backlog)
        raise


def _sweep_run(attempt: Attempt, key: BacklogKey, backlog: Backlog) -> Decision:
    """Circuit, window and budget for a taken backlog; then its run, or it goes back."""
    runtime, rule, event = attempt.runtime, attempt.rule, attempt.event
    store, now = runtime.store, runtime.clock()
    group = key if key.kind is BacklogKind.GROUP else None
    # The sweep is the group's run: it never holds the window's first event.
    with admission.admit(
        store, rule, budgets=runtime.config.budgets, now=now, group=group
    ) as admitted:
        if admitted.hold == "window":
            return _wait(
                store,
                attempt,
                backlog,
                key,
                DecisionKind.COALESCED,
                "the group's window is still open",
            )
        if admitted.hold == "budget":
            return _wait(
                store,
                attempt,
                backlog,
                keys.budget_backlog(rule, event),
                DecisionKind.SUPPRESSED_BUDGET,
                "over budget",
            )
        if admitted.hold is not None:
            return _wait(
                store,
                attempt,
                backlog,
                key,
                DecisionKind.FAILED_CIRCUIT_OPEN,
                admission.hold_detail(admitted.hold, rule),
            )
        if not store.claim(
            key=attempt.key, ttl=rule.dedup_window or runtime.default_window, now=now
        ):
            # Only a run the agent refused leaves its summary to come back unchanged.
            logger.warning("sweep: %s already ran with this summary; dropped", key)
            return attempt.decide(DecisionKind.DUPLICATE)
        budget_backlog = store.take_backlog(key=keys.budget_backlog(rule, event))
        held = records.merge(backlog.summary, records.summary_in(budget_backlog))
        assert held is not None
        note = (
            silence_held.end_note(_muting_label(keys.muting_of(key)), held)
            if key.kind is BacklogKind.SILENCE
            else f"This run stands for {held.count} event(s) held back by storm control that "
            "no later run has reported; the latest of them is the event this prompt "
            "describes, and all are summarised under held_back in the event data."
        )
        return firing.run(attempt, admitted, held, note)


def _wait(
    backlogs: BacklogStore,
    attempt: Attempt,
    backlog: Backlog,
    into: BacklogKey,
    kind: DecisionKind,
    detail: str,
) -> Decision:
    """Put the backlog back (under ``into``) for a later tick; nothing is recorded."""
    backlogs.add_backlog(key=into, backlog=backlog)
    return attempt.decide(kind, detail=detail)


def _muting_label(muting: str) -> str:
    """``silence <id>`` or ``maintenance window <name>`` for a prompt's note."""
    if muting.startswith("window:"):
        return "maintenance window " + muting.removeprefix("window:").partition("@")[0]
    return f"silence {muting}"
