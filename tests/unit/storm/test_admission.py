"""Admission gives back what a run took on every way out of its block, unless committed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from khook_core.errors import TransientError
from khook_core.hooks import HookRule
from khook_core.runtime import load_config
from khook_core.state.memory import MemoryStateStore
from khook_core.storm import admission, keys
from khook_core.storm.config import Budgets
from khook_core.storm.records import BacklogKey, BacklogKind
from tests.support.configdir import make_config, restart_hook
from tests.support.storm import START

HOOK = restart_hook(
    name="web",
    prompt="Pod {{.ResourceName}} keeps restarting.",
    extensions="coalesce: {window: 5m}\nrateLimit: {runs: 1, per: 1h}",
)
BUDGETS = Budgets.model_validate(
    {
        "maxConcurrentRuns": 1,
        "agents": {"kagent/k8s-agent": {"runs": 1, "per": "1h"}},
        "circuitBreaker": {"failures": 1, "coolDown": "1m"},
    }
)
GROUP = BacklogKey(BacklogKind.GROUP, "shop/web|pod-restart|shop/web")
HOUR = timedelta(hours=1)


@pytest.fixture
def rule(tmp_path: Path) -> HookRule:
    [rule] = load_config(make_config(tmp_path, HOOK)).hooks.rules
    return rule


def half_open(store: MemoryStateStore, rule: HookRule) -> None:
    """The agent failed once (threshold 1) more than a cool-down ago: one run may probe."""
    store.record_failure(
        key=keys.circuit(rule),
        threshold=1,
        cool_down=timedelta(minutes=1),
        now=START - timedelta(minutes=2),
    )


def admit(store: MemoryStateStore, rule: HookRule) -> admission.Admission:
    return admission.admit(store, rule, budgets=BUDGETS, now=START, group=GROUP)


def everything_free(store: MemoryStateStore, rule: HookRule) -> bool:
    """Each thing a run takes can be taken again (then is, so call this once)."""
    return all(
        (
            store.take_slot(key=keys.hook_slot(rule), limit=1, window=HOUR, now=START),
            store.take_slot(
                key=keys.agent_slot("kagent/k8s-agent"), limit=1, window=HOUR, now=START
            ),
            store.acquire_lease(scope=keys.RUNS_SCOPE, cap=1, ttl=HOUR, now=START) is not None,
            store.claim(key=keys.window(GROUP), ttl=HOUR, now=START),
            store.claim(key=keys.probe(rule), ttl=HOUR, now=START),
        )
    )


def test_an_admitted_run_that_raises_gives_back_its_slots_lease_window_and_probe(
    rule: HookRule,
):
    store = MemoryStateStore()
    half_open(store, rule)

    seen: list[object] = []

    def run() -> None:
        with admit(store, rule) as admitted:
            seen.extend(
                (
                    admitted.hold,
                    len(admitted.slots),
                    admitted.lease is not None,
                    admitted.window,
                    admitted.probe,
                )
            )
            raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        run()

    assert seen == [None, 2, True, keys.window(GROUP), keys.probe(rule)]
    assert everything_free(store, rule)


def test_leaving_the_block_early_without_commit_gives_everything_back(rule: HookRule):
    store = MemoryStateStore()
    half_open(store, rule)

    def decide() -> str:
        with admit(store, rule) as admitted:
            if admitted.hold is None:
                return "run did not start"
        return "unreachable"

    assert decide() == "run did not start"
    assert everything_free(store, rule)


def test_a_committed_run_keeps_what_it_took(rule: HookRule):
    store = MemoryStateStore()
    half_open(store, rule)

    with admit(store, rule) as admitted:
        admitted.commit()

    assert not store.take_slot(key=keys.hook_slot(rule), limit=1, window=HOUR, now=START)
    assert store.acquire_lease(scope=keys.RUNS_SCOPE, cap=1, ttl=HOUR, now=START) is None
    assert not store.claim(key=keys.window(GROUP), ttl=HOUR, now=START)
    assert not store.claim(key=keys.probe(rule), ttl=HOUR, now=START)
    with admit(store, rule) as second:
        assert second.hold == "window"  # the committed run's window holds the group


def test_a_store_failure_at_a_gate_gives_back_what_the_earlier_gates_took(rule: HookRule):
    class LeaseFails(MemoryStateStore):
        def acquire_lease(self, **kwargs: object) -> str | None:
            raise TransientError("store unreachable")

    store = LeaseFails()

    with pytest.raises(TransientError), admit(store, rule):
        pytest.fail("the block must not run when a gate failed")

    assert store.take_slot(key=keys.hook_slot(rule), limit=1, window=HOUR, now=START)
    assert store.take_slot(key=keys.agent_slot("kagent/k8s-agent"), limit=1, window=HOUR, now=START)
    # The window was claimed before the budget failed and is not the run's: it stays.
    assert not store.claim(key=keys.window(GROUP), ttl=HOUR, now=START)


def test_a_budget_hold_gives_its_slots_back_and_leaves_the_window_to_its_group(
    rule: HookRule,
):
    store = MemoryStateStore()
    assert store.take_slot(
        key=keys.agent_slot("kagent/k8s-agent"), limit=1, window=HOUR, now=START
    )  # the agent's one run this hour is spent

    with admit(store, rule) as admitted:
        assert admitted.hold == "budget"
        assert (admitted.lease, admitted.window) == (None, None)  # the window is not the run's

    # The hook's slot came back; the window stays claimed so the group's later events coalesce.
    assert store.take_slot(key=keys.hook_slot(rule), limit=1, window=HOUR, now=START)
    assert not store.claim(key=keys.window(GROUP), ttl=HOUR, now=START)
