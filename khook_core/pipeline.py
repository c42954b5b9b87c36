"""The entries every function and the CLI call: raw payload in, decisions out; and the sweep.

decode (caller) → normalize (source) → map → match hooks → claim → storm control (circuit,
coalescing, budgets) → render → dispatch → record.

Every outcome is a ``Decision``: ``dispatched``, ``duplicate``, ``no-hook``, ``resolved``,
``coalesced``, ``suppressed:budget``, ``dropped:<why>`` or ``failed:<why>``. A transient failure
releases its claim and is marked ``retryable``, so the transport can redeliver and the retry can
fire; nothing is dispatched twice because a successful dispatch keeps its claim.

Claims are idempotent per delivery: the claim's owner derives from what a redelivery carries
again (``delivery_of``), so a redelivery whose earlier attempt lost track of its claim (a write
whose reply never came, a release that failed) resumes it instead of calling it a duplicate.
A send that may have reached the agent (``OutcomeUnknownError``) keeps its claim, marked
uncertain; the redelivery asks the agent before sending again (``DispatchRequest.verify``).

``sweep``, called on a schedule, gives the events storm control held back the run no later
event came to carry, through the same circuit, budget, render and dispatch steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from khook_core import budget, prompt
from khook_core.dispatch.base import DispatchRequest
from khook_core.errors import DispatchError, OutcomeUnknownError, TransientError
from khook_core.event import Event
from khook_core.sources.base import PUBSUB_MESSAGE_ID, PUBSUB_TOPIC, Dropped
from khook_core.state.base import ClaimResult, DedupKey, Firing, StateStore
from khook_core.storm import records
from khook_core.storm.records import Backlog, Summary

if TYPE_CHECKING:
    from khook_core.hooks import HookRule
    from khook_core.runtime import Runtime

logger = logging.getLogger(__name__)

Hold = Literal["circuit-open", "probing", "window", "budget"]
"""What holds a run back at storm control's gates (see ``_gates``)."""


class Decision(NamedTuple):
    """What happened to one event for one hook (or to a payload that produced no event).

    A named tuple rather than a frozen dataclass: one is built per event and hook, and tuple
    construction is several times cheaper in a storm.
    """

    decision: str
    event: Event | None = None
    hook: str | None = None
    agent: str | None = None
    prompt: str | None = None
    key: str | None = None
    task_id: str = ""
    detail: str = ""
    retryable: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "event": None if self.event is None else self.event.model_dump(mode="json"),
            "hook": self.hook,
            "agent": self.agent,
            "prompt": self.prompt,
            "key": self.key,
            "task_id": self.task_id or None,
            "detail": self.detail or None,
            "retryable": self.retryable,
        }


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
    plugin = runtime.config.sources.get(source)
    try:
        events = plugin.normalize(raw, attributes)
    except Dropped as dropped:
        return [Decision(f"dropped:{dropped.reason}")]
    if not events:
        return [Decision("dropped:no-event")]
    # Redaction, once, before anything leaves: every step after this sees only masked values.
    events = runtime.redactor.events(events)
    decisions: list[Decision] = []
    delivery = delivery_of(attributes)
    for event in events:
        decisions.extend(
            process_event(event, runtime=runtime, deadline=deadline, delivery=delivery)
        )
    return decisions


DELIVERY_HEADERS = ("x-github-delivery", "webhook-id")
"""HTTP headers a sender repeats unchanged when it redelivers: GitHub's delivery GUID and the
Standard Webhooks ``webhook-id``. Alertmanager sends none."""


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
    mapping = runtime.config.mapping
    why = mapping.drop_reason(event.source, event.type)
    if why is not None:
        return [Decision(f"dropped:{why}", event)]
    candidates = runtime.config.hooks.candidates(event)
    if not candidates:
        return [Decision("no-hook", event)]
    for rule in candidates:
        if rule.needs_mapping:
            event = enrich(event, runtime)
            break
    rules = [rule for rule in candidates if rule.matches(event)]
    if not rules:
        return [Decision("no-hook", event)]
    return [fire(rule, event, runtime, deadline, delivery) for rule in rules]


def enrich(event: Event, runtime: Runtime) -> Event:
    """Apply the mapping row: internal type, tags (the event's own win) and the higher severity."""
    entry = runtime.config.mapping.get(event.source, event.type)
    if entry is None:
        return event
    severity = entry.severity if entry.severity.rank >= event.severity.rank else event.severity
    tags = {**entry.tags, **event.tags}  # a new dict: the mapping row is shared
    return event.evolve(internal_type=entry.internal_type, severity=severity, tags=tags)


def dedup_key(rule: HookRule, event: Event) -> DedupKey:
    """hook + source + event type + resource (+ occurrence): what "the same firing" means."""
    return DedupKey(
        "|".join((rule.hook, event.source, event.type, event.resource.ref(), event.occurrence))
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


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
    store = runtime.store
    key = dedup_key(rule, event)
    firing = _Firing(runtime, rule, event, key, deadline)
    try:
        if event.status == "resolved":
            store.release(key=key)
            return firing.decide("resolved", record=True)
        ttl = rule.dedup_window or runtime.default_window
        if event.occurrence:  # one alert episode, one change: fires once, not once a window
            ttl = max(ttl, OCCURRENCE_WINDOW)
        claimed = store.claim_firing(
            key=key,
            owner=f"{delivery}|{event.id}",  # with the key: this delivery's claim
            ttl=ttl,
            now=runtime.clock(),
            stale_after=runtime.stale_after,
        )
    except TransientError as exc:  # nothing claimed (or the store read it back as not ours)
        return _store_unavailable(firing, exc)
    if claimed == "held":
        return firing.decide("duplicate")
    if claimed == "busy":
        return firing.decide(
            "failed:in-flight",
            detail="an earlier attempt of this delivery holds the claim and may still be "
            "running; left for the redelivery",
            retryable=True,
        )
    if claimed == "uncertain":  # it passed storm control the first time; the run may be going
        firing.event = enrich(event, runtime)
        return _run(firing, None, "", resumed=claimed)
    try:
        firing.event = event = enrich(event, runtime)
        held = _storm_control(firing)
    except TransientError as exc:
        _release_quietly(runtime, key)
        _undo(firing)
        return _store_unavailable(firing, exc)
    if isinstance(held, Decision):
        return held

    note = ""
    if held is not None:
        note = (
            f"This run also stands for {held.count} related event(s) held back by storm "
            "control since the last run; they are summarised under held_back in the event "
            "data."
        )
    return _run(firing, held, note, resumed=claimed)


def _run(
    firing: _Firing, held: Summary | None, note: str, resumed: ClaimResult | None = None
) -> Decision:
    """Render, dispatch, confirm and record a claimed firing that passed storm control.

    ``resumed``: how ``claim_firing`` answered (None: a plain claim, the sweep's). ``resumed``
    or ``uncertain``: an earlier attempt of this firing may have sent it, so the dispatcher asks
    the agent first; a resend it could not verify after an uncertain send is recorded as
    ``resent-unverified``. A plain claim has no delivery to resume it, so a send that may have
    arrived releases it like any transient failure.
    """
    rule, event, key, store = firing.rule, firing.event, firing.key, firing.runtime.store
    time_budget = None if firing.deadline is None else firing.deadline - time.monotonic()
    unsure = resumed in ("resumed", "uncertain")  # an earlier attempt may have sent it
    if time_budget is not None and time_budget < MIN_DISPATCH_S:
        if unsure:  # kept, so the redelivery still asks the agent before sending
            _mark_uncertain(firing)
        else:
            _release_quietly(firing.runtime, key)
        _undo(firing)
        _keep_held(firing, held)
        return firing.decide(
            "failed:transient",
            detail="the invocation's time budget is spent; left for the redelivery",
            retryable=True,
        )
    extra = None if held is None else {"held_back": held.to_json()}
    firing.prompt = prompt.render(rule.template, event, extra, note)
    request = DispatchRequest(
        event=event,
        hook=rule.hook,
        target=rule.target,
        prompt=firing.prompt,
        key=key,
        # The message id changes only with the event occurrence, so a redelivered event
        # carries the same id and the agent can recognise the repeat.
        message_id=f"khook-{_digest(key, event.id)}",
        # One conversation per incident: the dedup key, so every firing of it (and every
        # retry) carries the same context; the agent is asked for this message within it.
        context_id=f"khook-{_digest(key)}",
        time_budget=time_budget,
        verify=unsure,
    )
    try:
        result = firing.runtime.dispatcher.dispatch(request)
    except OutcomeUnknownError as exc:
        if resumed is None:
            _after_failure(firing, held)
            return firing.decide("failed:transient", detail=str(exc), retryable=True,
                                 record=True)
        _after_uncertain(firing, held)
        return firing.decide("failed:uncertain", detail=str(exc), retryable=True, record=True)
    except TransientError as exc:
        if unsure:  # the earlier send may still have arrived: keep asking on the next retry
            _after_uncertain(firing, held)
        else:
            _after_failure(firing, held)
        return firing.decide("failed:transient", detail=str(exc), retryable=True, record=True)
    except DispatchError as exc:
        # A permanent refusal keeps the claim: retrying within the window cannot succeed.
        _undo(firing)
        _keep_held(firing, held)
        with contextlib.suppress(TransientError):  # confirmed: a later resend is a duplicate
            store.confirm(key=key, outcome="failed:rejected")
        return firing.decide("failed:rejected", detail=str(exc), record=True)
    try:
        store.confirm(key=key, outcome="dispatched", task_id=result.task_id)
        store.record_success(key=_circuit_key(rule))
    except TransientError as exc:  # the run started; a lost confirmation must not re-run it
        logger.error("dispatched %s but could not confirm the claim: %s", key, exc)
    outcome = "dispatched"
    if result.recovered == "unverified" and resumed == "uncertain":
        outcome = "resent-unverified"
        logger.warning("resent %s to %s: the agent could not say whether the first send "
                       "arrived", key, rule.target.label())
    return firing.decide("dispatched", task_id=result.task_id, detail=result.state, record=True,
                         outcome=outcome, recovered=result.recovered)


OCCURRENCE_WINDOW = timedelta(hours=24)
"""How long the claim of an event that names its own occurrence lasts (an alert's fingerprint
and ``startsAt``, a sender's event id): Alertmanager re-sends a firing alert every
``repeat_interval`` (4 h by default), and each re-send is the same occurrence. A resolved
alert releases the claim earlier; one still firing after a day gets a new run, a reminder."""
MIN_DISPATCH_S = 1.0
"""Below this much time left in the invocation, a dispatch is not started (it could not finish)."""
SWEEP_BATCH = 200
"""Backlogs one sweep looks at; the rest wait for the next tick (a tick must fit a function's
timeout, and a sweep run costs one dispatch)."""


def sweep(
    *, runtime: Runtime, limit: int = SWEEP_BATCH, deadline: float | None = None
) -> list[Decision]:
    """Start the runs that held-back events are owed but no later event came to carry.

    Storm control summarises held events in their group's (or hook's) next run, and that run
    normally comes with the next event. When a storm just stops, nothing comes: the sweep,
    called on a schedule, gives each such backlog its run once the group's window has passed
    and the budget allows, through the same circuit, budget, render and dispatch steps as
    ``fire``. A backlog that is not yet due is put back untouched. Only runs (dispatched or
    failed) are recorded in the audit trail; skips are returned for the caller to report.

    Raises:
        TransientError: the backlogs could not be listed (the next tick tries again).
    """
    decisions: list[Decision] = []
    keys = runtime.store.backlog_keys(limit=limit)
    # Groups first: a group's run also carries its hook's budget backlog, one run for both.
    ordered = sorted(keys, key=lambda k: not k.startswith("coalesce|"))
    for done, key in enumerate(ordered):
        if deadline is not None and deadline - time.monotonic() < MIN_DISPATCH_S:
            logger.warning("sweep: the invocation's time budget is spent; %d backlog(s) left "
                           "for the next tick", len(ordered) - done)
            break
        try:
            decision = _sweep_one(key, runtime, deadline)
        except TransientError as exc:
            logger.warning("sweep of %s: state store unavailable: %s", key, exc)
            decision = Decision("failed:state-unavailable", key=key, detail=str(exc),
                                retryable=True)
        if decision is not None:
            decisions.append(decision)
    return decisions


def _sweep_one(key: str, runtime: Runtime, deadline: float | None) -> Decision | None:
    store = runtime.store
    backlog = store.take_backlog(key=key)
    if backlog is None:  # a run took it since the listing
        return None
    try:
        event = Event.model_validate_json(backlog.event)
    except ValueError as exc:
        logger.error("sweep: backlog %s holds no readable event (%s); dropped", key, exc)
        return Decision("dropped:unreadable-backlog", key=key, detail=str(exc))
    rule = next((r for r in runtime.config.hooks.match(event) if r.hook == backlog.hook), None)
    if rule is None:  # the hook was removed or changed since it held these events
        logger.warning("sweep: %d held event(s) of %s dropped: hook %s no longer matches",
                       backlog.summary.count, key, backlog.hook)
        return Decision("dropped:hook-gone", event, backlog.hook, key=key,
                        detail=f"{backlog.summary.count} held event(s)")
    digest = _digest(json.dumps(backlog.summary.to_json()))
    firing = _Firing(runtime, rule, event, DedupKey(f"sweep|{key}|{digest}"), deadline)
    try:
        return _sweep_run(firing, key, backlog)
    except TransientError:
        _undo(firing)
        with contextlib.suppress(TransientError):  # the store is failing; try to keep them
            store.add_backlog(key=key, backlog=backlog)
        raise


def _sweep_run(firing: _Firing, key: str, backlog: Backlog) -> Decision:
    """Circuit, window and budget for a taken backlog; then its run, or it goes back."""
    runtime, rule, event = firing.runtime, firing.rule, firing.event
    store, now = runtime.store, runtime.clock()

    def wait(decision: str, detail: str, into: str = key) -> Decision:
        store.add_backlog(key=into, backlog=backlog)
        return firing.decide(decision, detail=detail)

    group = key if key.startswith("coalesce|") and rule.coalesce is not None else None
    hold = _gates(firing, group, hold_first=False, now=now)  # the sweep is the group's run
    if hold == "window":
        return wait("coalesced", "the group's window is still open")
    if hold == "budget":
        return wait("suppressed:budget", "over budget", into=_budget_key(rule, event))
    if hold is not None:
        return wait("failed:circuit-open", _circuit_detail(hold, rule))
    if not store.claim(key=firing.key, ttl=rule.dedup_window or runtime.default_window, now=now):
        # Only a run the agent refused leaves its summary to come back unchanged.
        logger.warning("sweep: %s already ran with this summary; dropped", key)
        _undo(firing)
        return firing.decide("duplicate")
    budget_backlog = store.take_backlog(key=_budget_key(rule, event))
    held = records.merge(backlog.summary, _summary(budget_backlog))
    assert held is not None
    note = (
        f"This run stands for {held.count} event(s) held back by storm control that no later "
        "run has reported; the latest of them is the event this prompt describes, and all "
        "are summarised under held_back in the event data."
    )
    return _run(firing, held, note)


def _store_unavailable(firing: _Firing, exc: TransientError) -> Decision:
    logger.warning("state store unavailable for %s: %s", firing.key, exc)
    return firing.decide("failed:state-unavailable", detail=str(exc), retryable=True)


def _circuit_key(rule: HookRule) -> str:
    return f"circuit|{rule.target.label()}"


def _coalesce_key(rule: HookRule, event: Event) -> str | None:
    if rule.coalesce is None:
        return None
    return f"coalesce|{rule.hook}|{event.type}|{rule.coalesce.group_of(event)}"


def _budget_key(rule: HookRule, event: Event) -> str:
    return f"budget|{rule.hook}|{event.type}"


def _storm_control(firing: _Firing) -> Decision | Summary | None:
    """Circuit breaker, coalescing and budgets, in that order, after a successful claim.

    Returns the Decision when the event is held back, else the backlog summary (or None) that
    the run now carries.
    """
    runtime, rule, event, key = firing.runtime, firing.rule, firing.event, firing.key
    store = runtime.store
    group = _coalesce_key(rule, event)
    # A trailing group holds its first event too: the window it opens ends in one run.
    hold_first = rule.coalesce is not None and not rule.coalesce.leading
    hold = _gates(firing, group, hold_first=hold_first, now=runtime.clock())
    if hold == "window":
        assert group is not None  # a "window" hold is a coalescing group's
        assert rule.coalesce is not None
        store.add_backlog(key=group, backlog=_held(rule, event))
        store.confirm(key=key, outcome="coalesced")
        return firing.decide("coalesced", detail=rule.coalesce.group_of(event), record=True)
    if hold == "budget":
        store.add_backlog(key=_budget_key(rule, event), backlog=_held(rule, event))
        store.confirm(key=key, outcome="suppressed:budget")
        return firing.decide("suppressed:budget", record=True)
    if hold is not None:  # held, not dropped: the claim goes back, the transport redelivers
        store.release(key=key)
        return firing.decide("failed:circuit-open", retryable=True,
                             detail=_circuit_detail(hold, rule), record=True)
    return records.merge(
        _summary(store.take_backlog(key=group)) if group is not None else None,
        _summary(store.take_backlog(key=_budget_key(rule, event))),
    )


def _gates(firing: _Firing, group: str | None, *, hold_first: bool, now: datetime) -> Hold | None:
    """Circuit breaker, coalescing window, budgets and the half-open probe, in that order: what
    holds the run back, or None when it may start. The group's window, the budget and the probe
    it then took are the firing's, given back by ``_undo`` if the run does not start after all.

    ``group``: the coalescing group whose window this run would open (None: no coalescing);
    ``hold_first``: hold even the event that opens the window (a trailing group).
    """
    rule, store = firing.rule, firing.runtime.store
    circuit = store.circuit_state(key=_circuit_key(rule), now=now)
    if circuit == "open":
        return "circuit-open"
    coalesce = rule.coalesce
    if group is not None and coalesce is not None and (
        not store.claim(key=DedupKey(group), ttl=coalesce.window, now=now) or hold_first
    ):
        return "window"
    if not _within_budget(firing, firing.runtime.config.budgets, now):
        return "budget"
    firing.group = group if coalesce is not None else None
    if circuit == "half-open" and not _take_probe(firing, now):
        _undo(firing)
        return "probing"
    return None


def _circuit_detail(hold: Hold, rule: HookRule) -> str:
    agent = rule.target.label()
    if hold == "probing":
        return f"circuit half-open for {agent}: another event is probing the agent"
    return f"circuit open for {agent}"


def _take_probe(firing: _Firing, now: datetime) -> bool:
    """After the cool-down one run at a time tests the agent (a success closes the circuit, a
    failure re-opens it); the others wait, rather than all instances hitting it at once."""
    probe = DedupKey(f"probe|{_circuit_key(firing.rule)}")
    cool_down = firing.runtime.config.budgets.circuit_breaker.cool_down
    if not firing.runtime.store.claim(key=probe, ttl=cool_down, now=now):
        return False
    firing.probe = probe
    return True


def _held(rule: HookRule, event: Event, summary: Summary | None = None) -> Backlog:
    """A backlog entry for ``event`` (or for ``summary``, which ``event`` stands for)."""
    return Backlog(summary or records.summary_of(event), rule.hook, event.model_dump_json())


def _summary(backlog: Backlog | None) -> Summary | None:
    return None if backlog is None else backlog.summary


RUNS_SCOPE = "runs"
"""The lease scope of ``maxConcurrentRuns``."""


class _Taken(NamedTuple):
    """What a firing took from the budgets: given back if its run does not start after all."""

    slots: tuple[tuple[str, timedelta], ...]
    lease: str | None
    now: datetime


def _within_budget(firing: _Firing, budgets: budget.Budgets, now: datetime) -> bool:
    """Take a slot of every rate limit and a run lease, or nothing: a refusal by a later
    check gives back what the earlier ones took, so refused events use up no budget."""
    store, rule = firing.runtime.store, firing.rule
    limits: list[tuple[str, int, timedelta]] = []
    if rule.rate_limit is not None:
        limits.append((f"rate|hook|{rule.hook}|{rule.event_type}", rule.rate_limit.runs,
                       rule.rate_limit.per))
    agent = rule.target.label()
    agent_limit = budgets.agent_limit(agent)
    if agent_limit is not None:
        limits.append((f"rate|agent|{agent}", agent_limit.runs, agent_limit.per))
    slots: list[tuple[str, timedelta]] = []
    try:
        for key, runs, window in limits:
            if not store.take_slot(key=key, limit=runs, window=window, now=now):
                _give_back(store, _Taken(tuple(slots), None, now))
                return False
            slots.append((key, window))
        lease = None
        if budgets.max_concurrent_runs is not None:
            lease = store.acquire_lease(scope=RUNS_SCOPE, cap=budgets.max_concurrent_runs,
                                        ttl=budgets.run_lease, now=now)
            if lease is None:
                _give_back(store, _Taken(tuple(slots), None, now))
                return False
    except TransientError:
        _give_back(store, _Taken(tuple(slots), None, now))
        raise
    firing.taken = _Taken(tuple(slots), lease, now)
    return True


def _give_back(store: StateStore, taken: _Taken | None) -> None:
    """Return slots and lease of a run that did not start (best effort: they lapse anyway)."""
    if taken is None:
        return
    try:
        for key, window in taken.slots:
            store.return_slot(key=key, window=window, now=taken.now)
        if taken.lease is not None:
            store.release_lease(scope=RUNS_SCOPE, lease=taken.lease)
    except TransientError as exc:
        logger.warning("could not give back the budget of a run that did not start: %s", exc)


def _undo(firing: _Firing) -> None:
    """A run that did not start after all: its budget back, and its group's window reopened,
    so the retry (or the group's next event) is the group's run rather than held behind it."""
    _give_back(firing.runtime.store, firing.taken)
    firing.taken = None
    if firing.group is not None:
        _release_quietly(firing.runtime, DedupKey(firing.group))
        firing.group = None
    if firing.probe is not None:
        _release_quietly(firing.runtime, firing.probe)
        firing.probe = None


def _after_failure(firing: _Firing, held: Summary | None) -> None:
    """Give the claim and the budget back, keep the held-back summary for the retry, count
    the failure."""
    _release_quietly(firing.runtime, firing.key)
    _undo(firing)
    _keep_held(firing, held)
    _count_failure(firing)


def _after_uncertain(firing: _Firing, held: Summary | None) -> None:
    """A send that may have started the run: the claim stays (marked uncertain, so the
    redelivery resumes it at once and asks the agent first) and so do the budget and the
    group's window it took; the held-back summary goes to the next run (it may be reported
    twice, never lost); the slow answer counts as a failure of the agent."""
    _mark_uncertain(firing)
    _keep_held(firing, held)
    _count_failure(firing)


def _mark_uncertain(firing: _Firing) -> None:
    try:
        firing.runtime.store.mark_uncertain(key=firing.key)
    except TransientError as exc:  # still ours: the redelivery resumes it once it is stale
        logger.error("could not mark claim %s uncertain: %s", firing.key, exc)


def _count_failure(firing: _Firing) -> None:
    """Count a failed run of the firing's agent towards its circuit breaker."""
    runtime, rule = firing.runtime, firing.rule
    breaker = runtime.config.budgets.circuit_breaker
    try:
        if runtime.store.record_failure(
            key=_circuit_key(rule),
            threshold=breaker.failures,
            cool_down=breaker.cool_down,
            now=runtime.clock(),
        ):
            logger.warning(
                "circuit open for %s for %s after %d consecutive failures",
                rule.target.label(),
                breaker.cool_down,
                breaker.failures,
            )
    except TransientError as exc:
        logger.error("could not record the failure of %s: %s", firing.key, exc)


def _keep_held(firing: _Firing, held: Summary | None) -> None:
    """A run that did not start hands its held-back summary to the next one."""
    if held is None:
        return
    try:
        firing.runtime.store.add_backlog(
            key=_budget_key(firing.rule, firing.event),
            backlog=_held(firing.rule, firing.event, held),
        )
    except TransientError as exc:
        logger.error("lost the held-back summary of %s: %s", firing.key, exc)


class _Firing:
    """One match in flight: builds its Decision and, where asked, its audit record."""

    __slots__ = (
        "deadline", "event", "group", "key", "probe", "prompt", "rule", "runtime", "taken",
    )

    def __init__(
        self,
        runtime: Runtime,
        rule: HookRule,
        event: Event,
        key: DedupKey,
        deadline: float | None = None,
    ) -> None:
        self.runtime, self.rule, self.event, self.key = runtime, rule, event, key
        self.deadline = deadline
        self.prompt: str | None = None
        self.taken: _Taken | None = None  # budget taken for the run, if any
        self.group: str | None = None  # the coalescing group whose window the run opened
        self.probe: DedupKey | None = None  # the half-open circuit's probe this run holds

    def decide(
        self,
        decision: str,
        *,
        detail: str = "",
        task_id: str = "",
        retryable: bool = False,
        record: bool = False,
        outcome: str = "",
        recovered: str = "",
    ) -> Decision:
        """``outcome`` overrides what the audit record says (default: ``decision``);
        ``recovered`` says how a resumed send ended (``DispatchResult.recovered``)."""
        agent = self.rule.target.label()
        if record:
            self._record(outcome or decision, agent, detail, task_id, recovered)
        return Decision(
            decision,
            self.event,
            self.rule.hook,
            agent,
            self.prompt,
            self.key,
            task_id,
            detail,
            retryable,
        )

    def _record(
        self, outcome: str, agent: str, detail: str, task_id: str, recovered: str = ""
    ) -> None:
        """``detail`` is the error of a failure, or the task state of a dispatch."""
        event = self.event
        sent = outcome in ("dispatched", "resent-unverified")
        extra = {"state": detail} if sent and detail else {}
        if recovered:
            extra["recovered"] = recovered
        try:
            self.runtime.store.record(
                Firing(
                    key=self.key,
                    hook=self.rule.hook,
                    event_id=event.id,
                    event_type=event.type,
                    source=event.source,
                    resource=event.resource.ref(),
                    agent=agent,
                    prompt_hash=prompt.prompt_hash(self.prompt or ""),
                    outcome=outcome,
                    at=self.runtime.clock(),
                    task_id=task_id,
                    error="" if sent else detail,
                    extra=extra,
                )
            )
        except TransientError as exc:
            logger.error("could not record firing %s: %s", self.key, exc)


def _release_quietly(runtime: Runtime, key: DedupKey) -> None:
    try:
        runtime.store.release(key=key)
    except TransientError as exc:  # the claim expires on its own; the retry waits for it
        logger.error("could not release claim %s: %s", key, exc)
