"""One match in flight, past its claim and storm control: render, dispatch, confirm, record.

Shared by the pipeline (an event's firing) and the sweep (a backlog's run). ``run`` decides
what each way a dispatch can end leaves behind: a started run keeps its claim and commits its
admission (budget, window, probe); a failed one releases the claim, keeps its held-back
summary for the next run and counts against the agent's circuit; a send that may have reached
the agent keeps the claim marked uncertain, so the redelivery asks the agent first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from khook_core import prompt
from khook_core.decisions import Decision, DecisionKind
from khook_core.dispatch.base import DispatchRequest, DispatchResult
from khook_core.errors import DispatchError, OutcomeUnknownError, TransientError
from khook_core.state.base import BacklogStore, ClaimStore, DedupKey, Firing
from khook_core.storm import keys, records
from khook_core.storm.admission import release_quietly
from khook_core.tracking import tracker

if TYPE_CHECKING:
    from khook_core.event import Event
    from khook_core.hooks import HookRule
    from khook_core.runtime import Runtime
    from khook_core.state.base import ClaimResult, LimitStore
    from khook_core.storm.admission import Admission
    from khook_core.storm.records import Summary

logger = logging.getLogger(__name__)

MIN_DISPATCH_S = 1.0
"""Below this much time left in the invocation, a dispatch is not started (it could not finish)."""

_SENT = (DecisionKind.DISPATCHED, DecisionKind.OPENED_INCIDENT, "resent-unverified")
"""Audit outcomes of a send: their ``detail`` is the task state, not an error."""


class Attempt:
    """One match in flight: builds its Decision and, where asked, its audit record."""

    __slots__ = (
        "deadline",
        "event",
        "incident",
        "key",
        "prompt",
        "prompt_hash",
        "rule",
        "runtime",
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
        self.prompt_hash = ""
        """``prompt``'s hash, taken as it was rendered; "": none yet (computed if needed)."""
        self.incident = ""
        """The incident this firing opened or joined (``correlation``); "" if uncorrelated."""

    def decide(
        self,
        kind: DecisionKind,
        *,
        detail: str = "",
        task_id: str = "",
        retryable: bool = False,
        record: bool = False,
        outcome: str = "",
        recovered: str = "",
    ) -> Decision:
        """``outcome`` overrides what the audit record says (default: ``kind``);
        ``recovered`` says how a resumed send ended (``DispatchResult.recovered``). With
        ``record`` the audit record is written (``record``), as every firing writes one.

        ``detail`` is the error of a failure, or the task state of a dispatch."""
        rule, event = self.rule, self.event
        agent = rule.target.label()
        if record:
            outcome = outcome or kind
            sent = outcome in _SENT
            extra = {"state": detail} if sent and detail else {}
            if recovered:
                extra["recovered"] = recovered
            self.record(
                str(outcome),
                agent=agent,
                task_id=task_id,
                error="" if sent else detail,
                extra=extra,
                task_state=detail if sent and task_id else "",
            )
        return Decision(
            kind, event, rule.hook, agent, self.prompt, self.key, task_id, detail, retryable
        )

    def record(
        self,
        outcome: str,
        *,
        agent: str,
        task_id: str = "",
        error: str = "",
        extra: dict[str, str] | None = None,
        task_state: str = "",
    ) -> None:
        """Write this attempt's audit record (a firing's, or a silenced match's): the prompt's
        hash, the empty prompt's when none was rendered. A store that is down is logged, not
        raised: the decision stands without its record."""
        rule, event, runtime = self.rule, self.event, self.runtime
        try:
            runtime.store.record(
                Firing.trusted(
                    key=self.key,
                    hook=rule.hook,
                    event_id=event.id,
                    event_type=event.type,
                    source=event.source,
                    resource=event.resource.ref(),
                    agent=agent,
                    prompt_hash=self.prompt_hash or prompt.prompt_hash(self.prompt or ""),
                    outcome=outcome,
                    at=runtime.clock(),
                    task_id=task_id,
                    error=error,
                    extra=extra,
                    config_version=runtime.config.version,
                    incident=self.incident,
                    task_state=task_state,
                )
            )
        except TransientError as exc:
            logger.error("could not record firing %s (%s): %s", self.key, outcome, exc)


def run(
    attempt: Attempt,
    admitted: Admission | None,
    held: Summary | None,
    note: str,
    resumed: ClaimResult | None = None,
) -> Decision:
    """Render, dispatch, confirm and record a claimed firing that passed storm control.

    ``admitted``: what storm control let it take (None: a resumed run, which passed it the
    first time), committed once the run started or may have. ``resumed``: how
    ``claim_firing`` answered (None: a plain claim, the sweep's). ``resumed`` or
    ``uncertain``: an earlier attempt of this firing may have sent it, so the dispatcher asks
    the agent first; a resend it could not verify after an uncertain send is recorded as
    ``resent-unverified``. A plain claim has no delivery to resume it, so a send that may have
    arrived releases it like any transient failure.
    """
    rule, event, key, store = attempt.rule, attempt.event, attempt.key, attempt.runtime.store
    time_budget = None if attempt.deadline is None else attempt.deadline - time.monotonic()
    unsure = resumed in ("resumed", "uncertain")  # an earlier attempt may have sent it
    if time_budget is not None and time_budget < MIN_DISPATCH_S:
        if unsure:  # kept, so the redelivery still asks the agent before sending
            mark_uncertain(store, key)
        else:
            release_quietly(store, key)
        keep_held(store, attempt, held)
        return attempt.decide(
            DecisionKind.FAILED_TRANSIENT,
            detail="the invocation's time budget is spent; left for the redelivery",
            retryable=True,
        )
    extra = None if held is None else {"held_back": held.to_json()}
    attempt.prompt, attempt.prompt_hash = prompt.render_hashed(rule.template, event, extra, note)
    push_url, push_token = tracker.push_fields(attempt.runtime)  # where the agent may report
    # The message id changes only with the event occurrence, so a redelivered event carries
    # the same id and the agent can recognise the repeat. One conversation per incident: the
    # dedup key's, so every firing of it (and every retry) carries the same context; the agent
    # is asked for this message within it. A correlated firing's conversation is its
    # incident's, shared with the follow-ups.
    message_id, context_id = keys.dispatch_ids(key, event.id, attempt.incident)
    request = DispatchRequest.trusted(
        event=event,
        hook=rule.hook,
        target=rule.target,
        prompt=attempt.prompt,
        key=key,
        message_id=message_id,
        context_id=context_id,
        time_budget=time_budget,
        verify=unsure,
        push_url=push_url,
        push_token=push_token,
    )
    runtime = attempt.runtime
    try:
        if runtime.telemetry.enabled:
            request, result = _traced(runtime, request)
        else:  # telemetry off: no span, no clock read on the path of every firing
            result = runtime.dispatcher.dispatch(request)
    except OutcomeUnknownError as exc:
        if resumed is None:
            return _failed(attempt, held, exc)
        return _uncertain(attempt, admitted, held, DecisionKind.FAILED_UNCERTAIN, exc)
    except TransientError as exc:
        if unsure:  # the earlier send may still have arrived: keep asking on the next retry
            return _uncertain(attempt, admitted, held, DecisionKind.FAILED_TRANSIENT, exc)
        return _failed(attempt, held, exc)
    except DispatchError as exc:
        # A permanent refusal keeps the claim: retrying within the window cannot succeed.
        keep_held(store, attempt, held)
        with contextlib.suppress(TransientError):  # confirmed: a later resend is a duplicate
            store.confirm(key=key, outcome=DecisionKind.FAILED_REJECTED)
        return attempt.decide(DecisionKind.FAILED_REJECTED, detail=str(exc), record=True)
    if admitted is not None:
        admitted.commit()  # the run started: its budget, window and probe are spent
    try:
        store.confirm(key=key, outcome=DecisionKind.DISPATCHED, task_id=result.task_id)
        store.record_success(key=keys.circuit(rule))
    except TransientError as exc:  # the run started; a lost confirmation must not re-run it
        logger.error("dispatched %s but could not confirm the claim: %s", key, exc)
    tracker.start(attempt.runtime, request, result, rule)  # follow the task to its end
    sent = DecisionKind.OPENED_INCIDENT if attempt.incident else DecisionKind.DISPATCHED
    outcome: str = sent
    if result.recovered == "unverified" and resumed == "uncertain":
        outcome = "resent-unverified"
        logger.warning(
            "resent %s to %s: the agent could not say whether the first send arrived",
            key,
            rule.target.label(),
        )
    return attempt.decide(
        sent,
        task_id=result.task_id,
        detail=result.state,
        record=True,
        outcome=outcome,
        recovered=result.recovered,
    )


def _traced(runtime: Runtime, request: DispatchRequest) -> tuple[DispatchRequest, DispatchResult]:
    """The dispatch in its span, the agent call continuing the trace (``traceparent``), timed
    by how it ended (``ok``, ``uncertain``, ``transient``, ``rejected``): telemetry on only.
    The request as sent (with its trace headers) comes back with the result."""
    telemetry, source = runtime.telemetry, request.event.source
    started = time.perf_counter()
    try:
        with telemetry.span("dispatch", attributes={"khook.hook": request.hook}):
            request = dataclasses.replace(request, trace_headers=telemetry.trace_headers())
            result = runtime.dispatcher.dispatch(request)
    except OutcomeUnknownError:
        telemetry.dispatch(source, time.perf_counter() - started, "uncertain")
        raise
    except TransientError:
        telemetry.dispatch(source, time.perf_counter() - started, "transient")
        raise
    except DispatchError:
        telemetry.dispatch(source, time.perf_counter() - started, "rejected")
        raise
    telemetry.dispatch(source, time.perf_counter() - started, "ok")
    return request, result


def _failed(attempt: Attempt, held: Summary | None, exc: TransientError) -> Decision:
    """Give the claim back (the admission goes back as the run did not start), keep the
    held-back summary for the retry, count the failure."""
    store = attempt.runtime.store
    release_quietly(store, attempt.key)
    keep_held(store, attempt, held)
    count_failure(store, attempt)
    return attempt.decide(
        DecisionKind.FAILED_TRANSIENT, detail=str(exc), retryable=True, record=True
    )


def _uncertain(
    attempt: Attempt,
    admitted: Admission | None,
    held: Summary | None,
    kind: DecisionKind,
    exc: TransientError,
) -> Decision:
    """A send that may have started the run: the claim stays (marked uncertain, so the
    redelivery resumes it at once and asks the agent first) and so does what its admission
    took; the held-back summary goes to the next run (it may be reported twice, never lost);
    the slow answer counts as a failure of the agent."""
    store = attempt.runtime.store
    if admitted is not None:
        admitted.commit()
    mark_uncertain(store, attempt.key)
    keep_held(store, attempt, held)
    count_failure(store, attempt)
    return attempt.decide(kind, detail=str(exc), retryable=True, record=True)


def mark_uncertain(claims: ClaimStore, key: DedupKey) -> None:
    try:
        claims.mark_uncertain(key=key)
    except TransientError as exc:  # still ours: the redelivery resumes it once it is stale
        logger.error("could not mark claim %s uncertain: %s", key, exc)


def count_failure(limits: LimitStore, attempt: Attempt) -> None:
    """Count a failed run of the attempt's agent towards its circuit breaker."""
    runtime, rule = attempt.runtime, attempt.rule
    breaker = runtime.config.budgets.circuit_breaker
    try:
        if limits.record_failure(
            key=keys.circuit(rule),
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
        logger.error("could not record the failure of %s: %s", attempt.key, exc)


def keep_held(backlogs: BacklogStore, attempt: Attempt, held: Summary | None) -> None:
    """A run that did not start hands its held-back summary to the next one."""
    if held is None:
        return
    rule, event = attempt.rule, attempt.event
    try:
        backlogs.add_backlog(
            key=keys.budget_backlog(rule, event),
            backlog=records.backlog_of(rule.hook, event, held),
        )
    except TransientError as exc:
        logger.error("lost the held-back summary of %s: %s", attempt.key, exc)


def store_unavailable(attempt: Attempt, exc: TransientError) -> Decision:
    logger.warning("state store unavailable for %s: %s", attempt.key, exc)
    return attempt.decide(DecisionKind.FAILED_STATE_UNAVAILABLE, detail=str(exc), retryable=True)
