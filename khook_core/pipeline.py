"""The one entry every function and the CLI call: raw payload in, decisions out.

decode (caller) → normalize (source) → map → match hooks → claim → storm control (circuit,
coalescing, budgets) → render → dispatch → record.

Every outcome is a ``Decision``: ``dispatched``, ``duplicate``, ``no-hook``, ``resolved``,
``coalesced``, ``suppressed:budget``, ``dropped:<why>`` or ``failed:<why>``. A transient failure
releases its claim and is marked ``retryable``, so the transport can redeliver and the retry can
fire; nothing is dispatched twice because a successful dispatch keeps its claim.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from khook_core import budget, prompt
from khook_core.dispatch.base import DispatchRequest
from khook_core.errors import DispatchError, TransientError
from khook_core.event import Event
from khook_core.sources.base import Dropped
from khook_core.state.base import DedupKey, Firing, Summary

if TYPE_CHECKING:
    from khook_core.hooks import HookRule
    from khook_core.runtime import Runtime

logger = logging.getLogger(__name__)


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
    source: str, raw: Any, attributes: Mapping[str, str], *, runtime: Runtime
) -> list[Decision]:
    """Process one raw payload of ``source``.

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
    decisions: list[Decision] = []
    for event in events:
        decisions.extend(process_event(event, runtime=runtime))
    return decisions


def process_event(event: Event, *, runtime: Runtime) -> list[Decision]:
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
    return [fire(rule, event, runtime) for rule in rules]


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


def fire(rule: HookRule, event: Event, runtime: Runtime) -> Decision:
    """Claim, pass storm control, render, dispatch and record one match."""
    store = runtime.store
    key = dedup_key(rule, event)
    firing = _Firing(runtime, rule, event, key)
    try:
        if event.status == "resolved":
            store.release(key=key)
            return firing.decide("resolved", record=True)
        ttl = rule.dedup_window or runtime.default_window
        if not store.claim(key=key, ttl=ttl, now=runtime.clock()):
            return firing.decide("duplicate")
    except TransientError as exc:  # nothing claimed: nothing to give back
        return _store_unavailable(firing, exc)
    try:
        firing.event = event = enrich(event, runtime)
        held = _storm_control(firing)
    except TransientError as exc:
        _release_quietly(runtime, key)
        return _store_unavailable(firing, exc)
    if isinstance(held, Decision):
        return held

    note = ""
    extra: dict[str, Any] | None = None
    if held is not None:
        note = (
            f"This run also stands for {held.count} related event(s) held back by storm "
            "control since the last run; they are summarised under held_back in the event "
            "data."
        )
        extra = {"held_back": held.to_json()}
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
        context_id=f"khook-{_digest(key)}",
    )
    try:
        result = runtime.dispatcher.dispatch(request)
    except TransientError as exc:
        _after_failure(firing, held)
        return firing.decide("failed:transient", detail=str(exc), retryable=True, record=True)
    except DispatchError as exc:
        # A permanent refusal keeps the claim: retrying within the window cannot succeed.
        _keep_held(firing, held)
        return firing.decide("failed:rejected", detail=str(exc), record=True)
    try:
        store.confirm(key=key, outcome="dispatched", task_id=result.task_id)
        store.record_success(key=_circuit_key(rule))
    except TransientError as exc:  # the run started; a lost confirmation must not re-run it
        logger.error("dispatched %s but could not confirm the claim: %s", key, exc)
    return firing.decide("dispatched", task_id=result.task_id, detail=result.state, record=True)


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
    store, budgets, now = runtime.store, runtime.config.budgets, runtime.clock()
    if store.circuit_open(key=_circuit_key(rule), now=now):
        # Held, not dropped: the transport redelivers after the cool-down.
        store.release(key=key)
        return firing.decide(
            "failed:circuit-open",
            retryable=True,
            detail=f"circuit open for {rule.target.label()}",
            record=True,
        )
    group = _coalesce_key(rule, event)
    if (
        group is not None
        and rule.coalesce is not None
        and not store.claim(key=DedupKey(group), ttl=rule.coalesce.window, now=now)
    ):
        store.add_backlog(key=group, summary=budget.summary_of(event))
        store.confirm(key=key, outcome="coalesced")
        return firing.decide("coalesced", detail=rule.coalesce.group_of(event), record=True)
    if not _within_budget(firing, budgets, now):
        store.add_backlog(key=_budget_key(rule, event), summary=budget.summary_of(event))
        store.confirm(key=key, outcome="suppressed:budget")
        return firing.decide("suppressed:budget", record=True)
    return budget.merge(
        store.take_backlog(key=group) if group is not None else None,
        store.take_backlog(key=_budget_key(rule, event)),
    )


def _within_budget(firing: _Firing, budgets: budget.Budgets, now: datetime) -> bool:
    store, rule = firing.runtime.store, firing.rule
    if rule.rate_limit is not None and not store.take_slot(
        key=f"rate|hook|{rule.hook}|{rule.event_type}",
        limit=rule.rate_limit.runs,
        window=rule.rate_limit.per,
        now=now,
    ):
        return False
    agent = rule.target.label()
    limit = budgets.agent_limit(agent)
    if limit is not None and not store.take_slot(
        key=f"rate|agent|{agent}", limit=limit.runs, window=limit.per, now=now
    ):
        return False
    return budgets.max_concurrent_runs is None or store.acquire_lease(
        scope="runs", cap=budgets.max_concurrent_runs, ttl=budgets.run_lease, now=now
    )


def _after_failure(firing: _Firing, held: Summary | None) -> None:
    """Give the claim back, keep the held-back summary for the retry, count the failure."""
    runtime, rule = firing.runtime, firing.rule
    _release_quietly(runtime, firing.key)
    _keep_held(firing, held)
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
        firing.runtime.store.add_backlog(key=_budget_key(firing.rule, firing.event), summary=held)
    except TransientError as exc:
        logger.error("lost the held-back summary of %s: %s", firing.key, exc)


class _Firing:
    """One match in flight: builds its Decision and, where asked, its audit record."""

    __slots__ = ("event", "key", "prompt", "rule", "runtime")

    def __init__(self, runtime: Runtime, rule: HookRule, event: Event, key: DedupKey) -> None:
        self.runtime, self.rule, self.event, self.key = runtime, rule, event, key
        self.prompt: str | None = None

    def decide(
        self,
        decision: str,
        *,
        detail: str = "",
        task_id: str = "",
        retryable: bool = False,
        record: bool = False,
    ) -> Decision:
        agent = self.rule.target.label()
        if record:
            self._record(decision, agent, detail, task_id)
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

    def _record(self, outcome: str, agent: str, detail: str, task_id: str) -> None:
        """``detail`` is the error of a failure, or the task state of a dispatch."""
        event = self.event
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
                    error="" if outcome == "dispatched" else detail,
                    extra={"state": detail} if outcome == "dispatched" and detail else {},
                )
            )
        except TransientError as exc:
            logger.error("could not record firing %s: %s", self.key, exc)


def _release_quietly(runtime: Runtime, key: DedupKey) -> None:
    try:
        runtime.store.release(key=key)
    except TransientError as exc:  # the claim expires on its own; the retry waits for it
        logger.error("could not release claim %s: %s", key, exc)
