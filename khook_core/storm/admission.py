"""Admission: storm control's gates, with what they took given back structurally.

``admit`` runs the gates of one run in order — the agent's circuit breaker, the coalescing
group's window, the budgets (rate-limit slots, a run lease) and, for a half-open circuit, the
probe — when its ``Admission`` is entered: ``hold`` says what holds the run back (None: it may
start), and the admission owns what the run took. Leaving the ``with`` block gives all of it
back (slots returned, lease released, window reopened, probe freed) on every exit — a hold, an
early return, an exception — unless ``commit()`` said the run started (or may have)::

    with admission.admit(store, rule, budgets=..., now=..., group=...) as admitted:
        if admitted.hold is not None:
            return held_back(admitted.hold)
        ...dispatch...
        admitted.commit()  # the run started: its budget, window and probe are spent

Giving back is best effort: what is not returned lapses on its own (slots with their window,
leases with ``runLease``, claims with their TTL).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from khook_core.errors import TransientError
from khook_core.storm import keys

if TYPE_CHECKING:
    from khook_core.hooks import HookRule
    from khook_core.state.base import ClaimStore, GateStore
    from khook_core.storm.config import Budgets
    from khook_core.storm.records import BacklogKey, DedupKey

logger = logging.getLogger(__name__)

Hold = Literal["circuit-open", "probing", "window", "budget"]
"""What holds a run back at storm control's gates."""


class Slot(NamedTuple):
    """One rate-limit slot taken: returned with the same key, window and instant."""

    key: keys.SlotKey
    window: timedelta


class Admission:
    """The gates of one run, entered with ``with``: ``hold`` says whether it may start (None)
    or what holds it back; the slots, lease, window and probe it took are its own until
    ``commit()``, and given back when the block is left without it."""

    __slots__ = (
        "_budgets",
        "_committed",
        "_group",
        "_hold_first",
        "_rule",
        "_store",
        "hold",
        "lease",
        "now",
        "probe",
        "slots",
        "window",
    )

    def __init__(
        self,
        store: GateStore,
        rule: HookRule,
        budgets: Budgets,
        now: datetime,
        group: BacklogKey | None,
        hold_first: bool,
    ) -> None:
        self._store, self._rule, self._budgets, self.now = store, rule, budgets, now
        self._group, self._hold_first = group, hold_first
        self._committed = False
        self.hold: Hold | None = None
        self.slots: list[Slot] = []
        self.lease: str | None = None
        self.window: DedupKey | None = None
        """The coalescing window this run opened (reopened if the run does not start)."""
        self.probe: DedupKey | None = None
        """The half-open circuit's probe this run holds."""

    def __enter__(self) -> Admission:
        try:
            self.hold = self._gates()
        except BaseException:  # a store failure at a gate: what the earlier ones took goes back
            self.give_back()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self.give_back()

    def commit(self) -> None:
        """The run started (or may have): keep its budget, its window and its probe."""
        self._committed = True

    def give_back(self) -> None:
        """Return what the run took (best effort: it all lapses anyway); own nothing after."""
        store = self._store
        if self.slots or self.lease is not None:
            try:
                for slot in self.slots:
                    store.return_slot(key=slot.key, window=slot.window, now=self.now)
                if self.lease is not None:
                    store.release_lease(scope=keys.RUNS_SCOPE, lease=self.lease)
            except TransientError as exc:
                logger.warning(
                    "could not give back the budget of a run that did not start: %s", exc
                )
            self.slots, self.lease = [], None
        # A reopened window makes the retry (or the group's next event) the group's run,
        # rather than held behind a run that never started.
        for claim in (self.window, self.probe):
            if claim is not None:
                release_quietly(store, claim)
        self.window = self.probe = None

    def _gates(self) -> Hold | None:
        """Circuit, window, budgets, probe, in that order: what holds the run back, or None."""
        store, rule, now = self._store, self._rule, self.now
        circuit = store.circuit_state(key=keys.circuit(rule), now=now)
        if circuit == "open":
            return "circuit-open"
        window: DedupKey | None = None
        coalesce = rule.coalesce
        if self._group is not None and coalesce is not None:
            window = keys.window(self._group)
            # A window claimed here for an event that is then held (a trailing group's first
            # event, or one over budget) stays open: the group's later events ride in it, and
            # the sweep gives it its run. It is the run's own only once the run may start.
            if not store.claim(key=window, ttl=coalesce.window, now=now) or self._hold_first:
                return "window"
        if not self._take_budget():
            return "budget"
        self.window = window
        if circuit == "half-open" and not self._take_probe():
            return "probing"
        return None

    def _take_budget(self) -> bool:
        """A slot of every rate limit and a run lease, or False: what the earlier checks took
        is the admission's, given back with the rest, so refused events use up no budget."""
        store, rule, budgets = self._store, self._rule, self._budgets
        limit = rule.rate_limit
        if limit is not None and not self._take_slot(keys.hook_slot(rule), limit.runs, limit.per):
            return False
        agent = rule.target.label()
        limit = budgets.agent_limit(agent)
        if limit is not None and not self._take_slot(keys.agent_slot(agent), limit.runs, limit.per):
            return False
        if budgets.max_concurrent_runs is not None:
            self.lease = store.acquire_lease(
                scope=keys.RUNS_SCOPE,
                cap=budgets.max_concurrent_runs,
                ttl=budgets.run_lease,
                now=self.now,
            )
            if self.lease is None:
                return False
        return True

    def _take_slot(self, key: keys.SlotKey, runs: int, window: timedelta) -> bool:
        """One slot of a rate limit, the admission's once taken; False when none is left."""
        if not self._store.take_slot(key=key, limit=runs, window=window, now=self.now):
            return False
        self.slots.append(Slot(key, window))
        return True

    def _take_probe(self) -> bool:
        """After the cool-down one run at a time tests the agent (a success closes the circuit,
        a failure re-opens it); the others wait, rather than all instances hitting it at once."""
        probe = keys.probe(self._rule)
        cool_down = self._budgets.circuit_breaker.cool_down
        if not self._store.claim(key=probe, ttl=cool_down, now=self.now):
            return False
        self.probe = probe
        return True


def admit(
    store: GateStore,
    rule: HookRule,
    *,
    budgets: Budgets,
    now: datetime,
    group: BacklogKey | None,
    hold_first: bool = False,
) -> Admission:
    """The gates of ``rule``'s next run, to enter with ``with`` (see the module docstring).

    Args:
        group: the coalescing group whose window this run would open (None: no coalescing).
        hold_first: hold even the event that opens the window (a trailing group).

    Raises:
        TransientError: on entering, the store failed at a gate (what was taken is given back).
    """
    return Admission(store, rule, budgets, now, group, hold_first)


def hold_detail(hold: Hold, rule: HookRule) -> str:
    """What a circuit hold (``circuit-open``, ``probing``) tells the caller."""
    agent = rule.target.label()
    if hold == "probing":
        return f"circuit half-open for {agent}: another event is probing the agent"
    return f"circuit open for {agent}"


def release_quietly(store: ClaimStore, key: DedupKey) -> None:
    """Release a claim; a failure is logged (the claim expires on its own, the retry waits)."""
    try:
        store.release(key=key)
    except TransientError as exc:
        logger.error("could not release claim %s: %s", key, exc)
