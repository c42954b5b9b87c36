"""The entry every function and the CLI call: raw payload in, decisions out.

decode (caller) → normalize (source) → redact (``redaction``) → map → match hooks → claim →
storm control (circuit, coalescing, budgets: ``storm.admission``) → render → dispatch → record
(``firing``).

Every outcome is a ``Decision`` of a ``DecisionKind``: ``dispatched``, ``duplicate``,
``no-hook``, ``resolved``, ``coalesced``, ``suppressed:budget``, ``suppressed:silenced``
(a silence or maintenance window, before any claim: ``khook_core.silencing``), ``dropped:<why>``
(``dropped:condition-error`` when a hook's ``when:`` has no result for the event) or
``failed:<why>``. A transient failure releases its claim and is marked ``retryable``, so the
transport can redeliver and the retry can fire; nothing is dispatched twice because a
successful dispatch keeps its claim.

Claims are idempotent per delivery: the claim's owner derives from what a redelivery carries
again (``delivery_of``), so a redelivery whose earlier attempt lost track of its claim (a write
whose reply never came, a release that failed) resumes it instead of calling it a duplicate.
A send that may have reached the agent (``OutcomeUnknownError``) keeps its claim, marked
uncertain; the redelivery asks the agent before sending again (``DispatchRequest.verify``).

``sweep`` (``khook_core.sweep``), called on a schedule, gives the events storm control held back
the run no later event came to carry.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from khook_core import conditions, correlation, firing
from khook_core.decisions import Decision, DecisionKind, DropReason
from khook_core.errors import TransientError
from khook_core.event import Event
from khook_core.firing import MIN_DISPATCH_S, Attempt
from khook_core.silencing import held as silence_held
from khook_core.sources.base import PUBSUB_MESSAGE_ID, PUBSUB_TOPIC, Dropped
from khook_core.storm import admission, keys, records
from khook_core.storm.admission import Hold, release_quietly
from khook_core.sweep import SWEEP_BATCH, sweep

if TYPE_CHECKING:
    from khook_core.hooks import HookRule
    from khook_core.runtime import Runtime
    from khook_core.state.base import ClaimResult
    from khook_core.storm.config import Correlate
    from khook_core.storm.records import BacklogKey, DedupKey, Summary

__all__ = [
    "MIN_DISPATCH_S",
    "OCCURRENCE_WINDOW",
    "SWEEP_BATCH",
    "Decision",
    "DecisionKind",
    "delivery_of",
    "enrich",
    "fire",
    "process_event",
    "run_pipeline",
    "sweep",
]

OCCURRENCE_WINDOW = timedelta(hours=24)
"""How long the claim of an event that names its own occurrence lasts (an alert's fingerprint
and ``startsAt``, a sender's event id): Alertmanager re-sends a firing alert every
``repeat_interval`` (4 h by default), and each re-send is the same occurrence. A resolved
alert releases the claim earlier; one still firing after a day gets a new run, a reminder."""

DELIVERY_HEADERS = ("x-github-delivery", "webhook-id")
"""HTTP headers a sender repeats unchanged when it redelivers: GitHub's delivery GUID and the
Standard Webhooks ``webhook-id``. Alertmanager sends none."""

logger = logging.getLogger(__name__)


def run_pipeline(
    source: str,
    raw: Any,
    attributes: Mapping[str, str],
    *,
    runtime: Runtime,
    deadline: float | None = None,
) -> list[Decision]:
    """Process one raw payload of ``source``.

    ``deadline`` (a ``time.monotonic()`` instant) bounds the dispatches of the whole payload:
    each gets at most what is left, and once less than ``MIN_DISPATCH_S`` is left the remaining
    firings are released and answered retryable instead of outrunning the function's timeout.

    Raises:
        InvalidEventError: the payload is malformed or the source unknown (permanent).
        PluginLoadError: the source is installed but cannot be used (configuration).
    """
    telemetry = runtime.telemetry
    decisions = _run(source, raw, attributes, runtime, deadline)
    if telemetry.enabled:
        for decision in decisions:
            telemetry.decision(source, decision.decision)
    return decisions


def _run(
    source: str,
    raw: Any,
    attributes: Mapping[str, str],
    runtime: Runtime,
    deadline: float | None,
) -> list[Decision]:
    plugin = runtime.config.sources.get(source)
    telemetry = runtime.telemetry
    try:
        if telemetry.enabled:
            with telemetry.span("normalize"):
                events = plugin.normalize(raw, attributes)
        else:  # telemetry off: not even a no-op span on the per-event path
            events = plugin.normalize(raw, attributes)
    except Dropped as dropped:
        return [Decision.dropped(dropped.reason)]
    if not events:
        return [Decision.dropped(DropReason.NO_EVENT)]
    if telemetry.enabled:
        for _ in events:
            telemetry.event_in(source)
    # Redaction, once, before anything leaves: every step after this sees only masked values.
    events = runtime.redactor.events(events)
    delivery = delivery_of(attributes)
    if len(events) == 1:  # the usual payload: its event's decisions are the payload's
        return process_event(events[0], runtime=runtime, deadline=deadline, delivery=delivery)
    decisions: list[Decision] = []
    for event in events:
        decisions.extend(
            process_event(event, runtime=runtime, deadline=deadline, delivery=delivery)
        )
    return decisions


def delivery_of(attributes: Mapping[str, str]) -> str:
    """What identifies this delivery and comes back unchanged on a redelivery: the Pub/Sub
    message id, else the sender's delivery id header, else "" (the claim's owner then falls
    back to the dedup key and event id)."""
    if not attributes:
        return ""
    message_id = attributes.get(PUBSUB_MESSAGE_ID)
    if message_id:
        return f"pubsub:{attributes.get(PUBSUB_TOPIC, '')}/{message_id}"
    for header in DELIVERY_HEADERS:
        value = attributes.get(header)
        if value:
            return f"{header}:{value}"
    return ""


def process_event(
    event: Event, *, runtime: Runtime, deadline: float | None = None, delivery: str = ""
) -> list[Decision]:
    """Map, match and fire one normalised event.

    The mapping row (internal type, mapped tags, severity) is applied before matching only when
    a candidate hook filters on tags or severity; otherwise it is applied once a claim is won,
    so the duplicates of a storm never pay for it. Decisions that fire carry the mapped event.
    """
    config = runtime.config
    why = config.mapping.drop_reason(event.source, event.type)
    if why is not None:
        return [Decision.dropped(why, event)]
    candidates = config.hooks.candidates(event)
    if not candidates:
        return [Decision(DecisionKind.NO_HOOK, event)]
    if len(candidates) == 1:  # a storm's usual case: one hook, matched and fired without lists
        rule = candidates[0]
        if rule.needs_mapping:
            event = enrich(event, runtime)
        try:
            matched = rule.matches(event)
        except conditions.ConditionError:  # its `when:` had no result: decide as below
            return _match_each(candidates, event, runtime, deadline, delivery)
        if not matched:
            return [Decision(DecisionKind.NO_HOOK, event)]
        return [fire(rule, event, runtime, deadline, delivery)]
    for rule in candidates:
        if rule.needs_mapping:
            event = enrich(event, runtime)
            break
    try:
        rules = [rule for rule in candidates if rule.matches(event)]
    except conditions.ConditionError:  # a hook's `when:` had no result: decide hook by hook
        return _match_each(candidates, event, runtime, deadline, delivery)
    if not rules:
        return [Decision(DecisionKind.NO_HOOK, event)]
    return [fire(rule, event, runtime, deadline, delivery) for rule in rules]


def _match_each(
    candidates: list[HookRule],
    event: Event,
    runtime: Runtime,
    deadline: float | None,
    delivery: str,
) -> list[Decision]:
    """Matching once a hook's condition failed on ``event``: that hook's decision is
    ``dropped:condition-error`` with the message; the other hooks match and fire as usual."""
    outcomes: list[HookRule | Decision] = []
    for rule in candidates:
        try:
            if rule.matches(event):
                outcomes.append(rule)
        except conditions.ConditionError as exc:
            logger.warning("hook %s: when: %s (event %s)", rule.hook, exc, event.id)
            outcomes.append(
                Decision.dropped(
                    DropReason.CONDITION_ERROR,
                    event,
                    hook=rule.hook,
                    agent=rule.target.label(),
                    detail=str(exc),
                )
            )
    if not outcomes:
        return [Decision(DecisionKind.NO_HOOK, event)]
    return [
        o if isinstance(o, Decision) else fire(o, event, runtime, deadline, delivery)
        for o in outcomes
    ]


def enrich(event: Event, runtime: Runtime) -> Event:
    """Apply the mapping row: internal type, tags (the event's own win) and the higher severity."""
    entry = runtime.config.mapping.get(event.source, event.type)
    if entry is None:
        return event
    severity = entry.severity if entry.severity.rank >= event.severity.rank else event.severity
    tags = {**entry.tags, **event.tags}  # a new dict: the mapping row is shared
    return event.evolve(internal_type=entry.internal_type, severity=severity, tags=tags)


def fire(
    rule: HookRule,
    event: Event,
    runtime: Runtime,
    deadline: float | None = None,
    delivery: str = "",
) -> Decision:
    """Claim, pass storm control, render, dispatch and record one match.

    ``delivery`` (see ``delivery_of``) makes the claim this delivery's own, so its redelivery
    resumes a claim an earlier attempt lost track of.
    """
    if rule.pii:  # the hook's own personal-data masking: nothing of this run sees it
        event = runtime.redactor.pii(event, rule.pii, rule.hook)
    store = runtime.store
    key = keys.firing(rule, event)
    now = runtime.clock()  # one instant for the silences and the claim
    # Silences and maintenance windows mute before the claim: nothing claimed, nothing owed.
    if event.status != "resolved":
        muting = runtime.silences.check(rule.hook, event, now, runtime.config.windows)
        if muting is not None:
            return silence_held.silenced(Attempt(runtime, rule, event, key, deadline), muting)
    claimed = _claim(rule, event, runtime, key, now, delivery, deadline)
    if claimed == "held":  # a repeat within the dedup window may still be new evidence
        settings = correlation.settings_for(rule, runtime)
        if settings is None or not event.workload:
            return duplicate(rule, event, key)
        return _repeat_joins(rule, event, runtime, key, settings, now, deadline)
    if isinstance(claimed, Decision):
        return claimed
    attempt = Attempt(runtime, rule, event, key, deadline)
    if claimed == "busy":
        return attempt.decide(
            DecisionKind.FAILED_IN_FLIGHT,
            detail="an earlier attempt of this delivery holds the claim and may still be "
            "running; left for the redelivery",
            retryable=True,
        )
    attempt.event = event = enrich(event, runtime)
    joined = _correlate(attempt)
    if joined is not None:
        return joined
    if claimed == "uncertain":  # it passed storm control the first time; the run may be going
        return firing.run(attempt, None, None, "", resumed=claimed)
    group = keys.group_backlog(rule, event)
    try:
        with admission.admit(
            store,
            rule,
            budgets=runtime.config.budgets,
            now=runtime.clock(),
            group=group,
            # A trailing group holds its first event too: the window it opens ends in one run.
            hold_first=rule.coalesce is not None and not rule.coalesce.leading,
        ) as admitted:
            if admitted.hold is not None:
                return _held_back(attempt, admitted.hold, group)
            grouped = (
                records.summary_in(store.take_backlog(key=group)) if group is not None else None
            )
            held = records.summary_in(store.take_backlog(key=keys.budget_backlog(rule, event)))
            if grouped is not None:
                held = records.merge(grouped, held)
            if held is not None:
                runtime.telemetry.backlog(event.source, held.count)
            # ``run`` never raises TransientError: every way a dispatch ends is a decision.
            return firing.run(attempt, admitted, held, _carried(held), resumed=claimed)
    except TransientError as exc:  # at storm control: the admission went back on the way out
        release_quietly(store, key)
        return firing.store_unavailable(attempt, exc)


def duplicate(rule: HookRule, event: Event, key: DedupKey) -> Decision:
    """A held claim's decision when the repeat joins no incident: a storm's common case, so
    nothing else is built for it (the fields ``Attempt.decide`` would give)."""
    return Decision(DecisionKind.DUPLICATE, event, rule.hook, rule.target.label(), None, key)


def _claim(
    rule: HookRule,
    event: Event,
    runtime: Runtime,
    key: DedupKey,
    now: datetime,
    delivery: str,
    deadline: float | None,
) -> ClaimResult | Decision:
    """The firing's claim (``claim_firing``), or the decision when there is nothing to claim
    (a resolved event releases it) or the store is unavailable. The firing's ``Attempt`` is
    built only for such a decision: a duplicate needs none."""
    store, telemetry = runtime.store, runtime.telemetry
    started = time.perf_counter() if telemetry.enabled else 0.0
    try:
        if event.status == "resolved":
            store.release(key=key)
            correlation.resolve(rule, event, runtime)
            attempt = Attempt(runtime, rule, event, key, deadline)
            return attempt.decide(DecisionKind.RESOLVED, record=True)
        ttl = rule.dedup_window or runtime.default_window
        if event.occurrence:  # one alert episode, one change: fires once, not once a window
            ttl = max(ttl, OCCURRENCE_WINDOW)
        owner = f"{delivery}|{event.id}"  # with the key: this delivery's claim
        if telemetry.enabled:
            with telemetry.span("claim"):
                claimed = store.claim_firing(
                    key=key, owner=owner, ttl=ttl, now=now, stale_after=runtime.stale_after
                )
        else:  # off: not even a no-op span on the per-event path
            claimed = store.claim_firing(
                key=key, owner=owner, ttl=ttl, now=now, stale_after=runtime.stale_after
            )
    except TransientError as exc:  # nothing claimed (or the store read it back as not ours)
        if telemetry.enabled:
            telemetry.claim(event.source, time.perf_counter() - started, "unavailable")
        return firing.store_unavailable(Attempt(runtime, rule, event, key, deadline), exc)
    if telemetry.enabled:  # off: no clock read, no call, per event
        telemetry.claim(event.source, time.perf_counter() - started, claimed)
    return claimed


def _correlate(attempt: Attempt) -> Decision | None:
    """Open or join the event's workload incident (``correlation``): a joining event's
    decision, or None when the firing goes on to its run (it opened the incident, or its hook
    does not correlate, or it names no workload)."""
    rule, event, runtime = attempt.rule, attempt.event, attempt.runtime
    settings = correlation.settings_for(rule, runtime)
    if settings is None or not event.workload:
        return None
    try:
        result = correlation.correlate(rule, event, runtime, settings)
    except TransientError as exc:
        release_quietly(runtime.store, attempt.key)
        return firing.store_unavailable(attempt, exc)
    attempt.incident = result.incident.id
    if result.opened or correlation.opener_retry(result, event):
        return None
    with contextlib.suppress(TransientError):  # joined for good: a redelivery is a duplicate
        runtime.store.confirm(key=attempt.key, outcome=DecisionKind.JOINED_INCIDENT)
    return attempt.decide(DecisionKind.JOINED_INCIDENT, detail=result.incident.id, record=True)


def _repeat_joins(
    rule: HookRule,
    event: Event,
    runtime: Runtime,
    key: DedupKey,
    settings: Correlate,
    now: datetime,
    deadline: float | None,
) -> Decision:
    """A repeat (a new occurrence whose dedup claim is held: the third BackOff of a Pod) joins
    its workload's open incident as evidence; a redelivery of an event that joined is still a
    duplicate, and so is a repeat that finds no open incident. A storm's every repeat comes
    here, so the decision is built as ``duplicate`` builds its own (the fields
    ``Attempt.decide`` would give)."""
    try:
        result = correlation.join_open(rule, event, runtime, settings, now)
    except TransientError as exc:
        return firing.store_unavailable(Attempt(runtime, rule, event, key, deadline), exc)
    if result is None:
        return duplicate(rule, event, key)
    # Not recorded: a repeat is a duplicate for the audit trail (one record per claim), and a
    # storm's repeats would flood it; the incident counts it and its follow-up carries it.
    return Decision(
        DecisionKind.JOINED_INCIDENT,
        event,
        rule.hook,
        rule.target.label(),
        None,
        key,
        "",
        result.incident.id,
    )


def _held_back(attempt: Attempt, hold: Hold, group: BacklogKey | None) -> Decision:
    """The decision for a firing storm control holds back: coalesced and over-budget events go
    to their backlog and keep their claim (a later run reports them); a circuit hold gives the
    claim back, so the transport redelivers it once the agent is reachable again."""
    store, rule, event, key = attempt.runtime.store, attempt.rule, attempt.event, attempt.key
    if hold == "window":
        assert group is not None  # a "window" hold is a coalescing group's
        assert rule.coalesce is not None
        store.add_backlog(key=group, backlog=records.backlog_of(rule.hook, event))
        store.confirm(key=key, outcome=DecisionKind.COALESCED)
        return attempt.decide(
            DecisionKind.COALESCED, detail=rule.coalesce.group_of(event), record=True
        )
    if hold == "budget":
        store.add_backlog(
            key=keys.budget_backlog(rule, event), backlog=records.backlog_of(rule.hook, event)
        )
        store.confirm(key=key, outcome=DecisionKind.SUPPRESSED_BUDGET)
        return attempt.decide(DecisionKind.SUPPRESSED_BUDGET, record=True)
    store.release(key=key)  # held, not dropped: the transport redelivers
    return attempt.decide(
        DecisionKind.FAILED_CIRCUIT_OPEN,
        retryable=True,
        detail=admission.hold_detail(hold, rule),
        record=True,
    )


def _carried(held: Summary | None) -> str:
    """The prompt's note on the events a run also stands for."""
    if held is None:
        return ""
    return (
        f"This run also stands for {held.count} related event(s) held back by storm "
        "control since the last run; they are summarised under held_back in the event "
        "data."
    )
