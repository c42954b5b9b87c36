"""Every key storm control writes to the state store, built in one place and never parsed.

Claims (``DedupKey``): a firing's, a coalescing group's window, a half-open circuit's probe, a
sweep run's. Counters: rate-limit slots, circuits, the run-lease scope. Backlogs: a typed
``BacklogKey`` (kind and name). The strings are the ones the store has always held, so data
written before this module stays valid.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final, NewType

from khook_core.storm.records import BacklogKey, BacklogKind, DedupKey

if TYPE_CHECKING:
    from khook_core.event import Event
    from khook_core.hooks import HookRule

SlotKey = NewType("SlotKey", str)
"""A rate limit's counter (``LimitStore.take_slot``): one per hook and event type, or agent."""
CircuitKey = NewType("CircuitKey", str)
"""An agent's circuit breaker (``LimitStore.record_failure`` …)."""

RUNS_SCOPE: Final = "runs"
"""The lease scope of ``maxConcurrentRuns``: one scope for every run of every agent."""


def firing(rule: HookRule, event: Event) -> DedupKey:
    """hook + source + event type + resource (+ occurrence): what "the same firing" means."""
    resource = event.resource  # its ``ref()``, spelled out: one call fewer per event
    return DedupKey(
        f"{rule.hook}|{event.source}|{event.type}|"
        f"{resource.namespace}/{resource.kind}/{resource.name}|{event.occurrence}"
    )


def group_backlog(rule: HookRule, event: Event) -> BacklogKey | None:
    """The backlog of the coalescing group ``event`` belongs to (None: the hook coalesces not)."""
    if rule.coalesce is None:
        return None
    return BacklogKey(
        BacklogKind.GROUP, f"{rule.hook}|{event.type}|{rule.coalesce.group_of(event)}"
    )


def budget_backlog(rule: HookRule, event: Event) -> BacklogKey:
    """The backlog of what the budgets held back of ``rule``'s hook and ``event``'s type."""
    return BacklogKey(BacklogKind.BUDGET, f"{rule.hook}|{event.type}")


def silence_backlog(muting: str, hook: str) -> BacklogKey:
    """What silence (or window occurrence) ``muting`` held back of ``hook``: one run per hook
    once it has ended. The hook is the last part (hooks hold no ``|``)."""
    return BacklogKey(BacklogKind.SILENCE, f"{muting}|{hook}")


def muting_of(key: BacklogKey) -> str:
    """The silence or window occurrence of a ``silence_backlog`` key."""
    return key.name.rpartition("|")[0]


def window(group: BacklogKey) -> DedupKey:
    """The claim that is a coalescing group's window: the group's backlog key, as a claim."""
    return DedupKey(group.stored)


def circuit(rule: HookRule) -> CircuitKey:
    return CircuitKey(f"circuit|{rule.target.label()}")


def probe(rule: HookRule) -> DedupKey:
    """The claim of the one run that probes a half-open circuit."""
    return DedupKey(f"probe|{circuit(rule)}")


def hook_slot(rule: HookRule) -> SlotKey:
    """The counter of the hook's ``rateLimit`` (per hook and event type configuration)."""
    return SlotKey(f"rate|hook|{rule.hook}|{rule.event_type}")


def agent_slot(agent: str) -> SlotKey:
    """The counter of an agent's rate limit (``budgets.yaml`` ``agents``)."""
    return SlotKey(f"rate|agent|{agent}")


def sweep_run(backlog: BacklogKey, summary_json: str) -> DedupKey:
    """The claim of a sweep's run of ``backlog`` with this summary: a summary the agent
    refused comes back unchanged, and is then recognised instead of offered again."""
    return DedupKey(f"sweep|{backlog.stored}|{digest(summary_json)}")


def digest(*parts: str) -> str:
    """A short, stable digest of ``parts`` (message and context ids, sweep run keys)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def dispatch_ids(key: DedupKey, event_id: str, incident: str = "") -> tuple[str, str]:
    """A firing's message id, ``khook-{digest(key, event_id)}``, and its context id: the
    incident's conversation, else ``khook-{digest(key)}``. The key is hashed once for both (a
    copy of its hash state goes on with the event id): every firing sends both."""
    head = hashlib.sha256(key.encode())
    context = incident or f"khook-{head.copy().hexdigest()[:32]}"
    head.update(b"\x1f" + event_id.encode())
    return f"khook-{head.hexdigest()[:32]}", context
