from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import (
    DispatchError,
    InvalidEventError,
    OutcomeUnknownError,
    TransientError,
)
from khook_core.pipeline import delivery_of, run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.base import ClaimResult
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.dispatchers import FlakyDispatcher
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return make_config(tmp_path, SHOP_HOOK)


def build(
    config: Path, dispatcher: DryRunDispatcher | None = None, clock: Clock | None = None
) -> Runtime:
    return Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=clock or Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=dispatcher or DryRunDispatcher(),
    )


@pytest.fixture
def runtime(config: Path) -> Iterator[Runtime]:
    rt = build(config)
    yield rt
    rt.close()


def test_one_event_fires_every_matching_hook_once(runtime: Runtime):
    decisions = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    assert [(d.decision, d.hook, d.agent) for d in decisions] == [
        ("dispatched", "shop/web", "kagent/k8s-agent"),
        ("dispatched", "shop/audit", "shop/audit-agent"),
    ]
    first = decisions[0]
    assert first.prompt is not None
    assert first.prompt.startswith('Pod "web-0" restarted: "BackOff"')
    assert first.event is not None
    assert first.event.internal_type == "PodRestart"
    assert first.event.tags["category"] == "reliability"
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    assert len(dispatcher.requests) == 2
    assert [f.outcome for f in runtime.store.firings()] == ["dispatched", "dispatched"]
    assert runtime.store.firings()[0].extra == {"state": "dry-run"}  # the task state answered


def test_redelivery_and_repeats_within_the_window_are_duplicates(runtime: Runtime):
    run_pipeline("kubernetes", core_event(count=7), {}, runtime=runtime)
    again = run_pipeline("kubernetes", core_event(count=7), {}, runtime=runtime)
    repeat = run_pipeline("kubernetes", core_event(count=8), {}, runtime=runtime)
    assert {d.decision for d in again + repeat} == {"duplicate"}


def test_after_the_window_the_same_condition_fires_again(config: Path):
    clock = Clock(NOW)
    runtime = build(config, clock=clock)
    run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    clock.fixed = NOW + timedelta(minutes=10)
    later = core_event(count=9, last="2026-01-05T10:44:00Z")
    assert {d.decision for d in run_pipeline("kubernetes", later, {}, runtime=runtime)} == {
        "dispatched"
    }


def test_message_id_is_stable_for_a_redelivery_and_context_id_per_incident(config: Path):
    a, b = build(config), build(config)
    run_pipeline("kubernetes", core_event(), {}, runtime=a)
    run_pipeline("kubernetes", core_event(), {}, runtime=b)
    ra, rb = (rt.dispatcher.requests[0] for rt in (a, b))  # type: ignore[attr-defined]
    assert ra.message_id == rb.message_id
    assert ra.message_id.startswith("khook-")
    assert ra.context_id == rb.context_id


@pytest.mark.parametrize(
    ("raw", "decision"),
    [
        (core_event(namespace="elsewhere"), "no-hook"),
        (core_event("Pulled", "pulled image", type_="Normal"), "dropped:normal"),
        (
            core_event(
                last="2026-01-05T09:00:00Z",
                created="2026-01-05T09:00:00Z",
                first="2026-01-05T09:00:00Z",
            ),
            "dropped:stale",
        ),
        (core_event("FailedMount", "mount failed"), "dropped:unmapped-reason"),
    ],
)
def test_every_payload_gets_an_explained_decision(runtime: Runtime, raw: object, decision: str):
    assert [d.decision for d in run_pipeline("kubernetes", raw, {}, runtime=runtime)] == [decision]


def test_disabled_mapping_drops(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    path = config / "event-mappings.yaml"
    path.write_text(
        path.read_text().replace(
            'eventType: "pod-restart"\n    internalType: "PodRestart"\n    description: '
            '"Pod container restart detected"\n    severity: "warning"\n    enabled: true',
            'eventType: "pod-restart"\n    internalType: "PodRestart"\n    description: '
            '"Pod container restart detected"\n    severity: "warning"\n    enabled: false',
        )
    )
    runtime = build(config)
    assert [d.decision for d in run_pipeline("kubernetes", core_event(), {}, runtime=runtime)] == [
        "dropped:disabled"
    ]


def test_transient_failure_releases_the_claim_so_a_retry_dispatches(config: Path):
    dispatcher = FlakyDispatcher(failures=2, error=TransientError("agent unreachable"))
    runtime = build(config, dispatcher)
    first = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    assert [d.decision for d in first] == ["failed:transient", "failed:transient"]
    assert all(d.retryable for d in first)
    retry = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    assert [d.decision for d in retry] == ["dispatched", "dispatched"]
    assert len(dispatcher.requests) == 2  # one run per hook, none twice
    outcomes = [f.outcome for f in runtime.store.firings()]
    assert outcomes.count("failed:transient") == 2
    assert outcomes.count("dispatched") == 2


def test_permanent_refusal_keeps_the_claim_and_is_not_retryable(config: Path):
    dispatcher = FlakyDispatcher(failures=99, error=DispatchError("agent not found", status=404))
    runtime = build(config, dispatcher)
    decisions = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    assert {d.decision for d in decisions} == {"failed:rejected"}
    assert not any(d.retryable for d in decisions)
    assert {d.decision for d in run_pipeline("kubernetes", core_event(), {}, runtime=runtime)} == {
        "duplicate"
    }


def test_unavailable_store_is_retryable_and_dispatches_nothing(config: Path):
    class BrokenStore(MemoryStateStore):
        def claim(self, **kwargs: object) -> bool:
            raise TransientError("database is locked")

        def claim_firing(self, **kwargs: object) -> ClaimResult:
            raise TransientError("database is locked")

    runtime = Runtime.build(
        Settings(config_dir=config),
        clock=Clock(NOW),
        store=BrokenStore(),
        dispatcher=DryRunDispatcher(),
    )
    decisions = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    assert {d.decision for d in decisions} == {"failed:state-unavailable"}
    assert all(d.retryable for d in decisions)
    assert not runtime.dispatcher.requests  # type: ignore[attr-defined]


def test_invalid_payload_and_unknown_source_raise_invalid_event(runtime: Runtime):
    with pytest.raises(InvalidEventError):
        run_pipeline("kubernetes", "not an object", {}, runtime=runtime)
    with pytest.raises(InvalidEventError, match="unknown source 'carrier-pigeon'") as info:
        run_pipeline("carrier-pigeon", {}, {}, runtime=runtime)
    assert info.value.status == 404


def test_each_dispatch_gets_what_is_left_of_the_invocation(runtime: Runtime):
    deadline = time.monotonic() + 30

    run_pipeline("kubernetes", core_event(), {}, runtime=runtime, deadline=deadline)

    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    budgets = [r.time_budget for r in dispatcher.requests]
    assert len(budgets) == 2
    assert all(b is not None and 25 < b <= 30 for b in budgets), budgets
    assert budgets[1] <= budgets[0]  # type: ignore[operator]


def test_a_spent_invocation_starts_no_dispatch_and_leaves_the_event_to_the_retry(
    runtime: Runtime,
):
    spent = time.monotonic() - 1

    late = run_pipeline("kubernetes", core_event(), {}, runtime=runtime, deadline=spent)
    retry = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)

    assert [(d.decision, d.retryable) for d in late] == [("failed:transient", True)] * 2
    assert "time budget" in late[0].detail
    assert [d.decision for d in retry] == ["dispatched", "dispatched"]  # the claims were released
    assert len(runtime.dispatcher.requests) == 2  # type: ignore[attr-defined]


def test_a_still_firing_alert_resent_every_repeat_interval_fires_once_a_day():
    """Alertmanager re-sends a firing alert every repeat_interval (4 h by default): the same
    occurrence (fingerprint + startsAt), so one run, not one per dedup window."""
    from tests.support.paths import REPO

    clock = Clock(datetime(2026, 1, 5, 10, 22, tzinfo=UTC))
    runtime = Runtime.build(
        Settings(config_dir=REPO / "config", state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    payload = (
        REPO / "config" / "samples" / "alertmanager" / "kube-pod-crash-looping-firing.json"
    ).read_text()

    def send(hours: float) -> list[str]:
        clock.fixed = datetime(2026, 1, 5, 10, 22, tzinfo=UTC) + timedelta(hours=hours)
        return [
            d.decision
            for d in run_pipeline("alertmanager", json.loads(payload), {}, runtime=runtime)
        ]

    assert send(0) == ["dispatched", "dispatched"]  # two alerts in the group
    assert set(send(4)) == {"duplicate"}  # the repeat_interval re-send
    assert set(send(20)) == {"duplicate"}
    assert set(send(24.5)) == {"dispatched"}  # still firing a day later: a reminder


def test_a_delivery_is_named_by_what_its_redelivery_carries_again():
    assert delivery_of({"pubsub.message_id": "77", "pubsub.topic": "khook-kafka"}) == (
        "pubsub:khook-kafka/77"
    )
    assert delivery_of({"x-github-delivery": "d-1", "x-request-id": "r-9"}) == (
        "x-github-delivery:d-1"
    )
    assert delivery_of({"webhook-id": "msg_2"}) == "webhook-id:msg_2"
    assert delivery_of({"x-request-id": "r-9"}) == ""  # a proxy's id changes per request


def test_a_send_that_may_have_arrived_keeps_its_claim_and_its_retry_asks_first(config: Path):
    dispatcher = FlakyDispatcher(failures=2, error=OutcomeUnknownError("read timeout"))
    runtime = build(config, dispatcher)
    attributes = {"pubsub.message_id": "77"}

    first = run_pipeline("kubernetes", core_event(), attributes, runtime=runtime)
    other = run_pipeline("kubernetes", core_event(), {"pubsub.message_id": "78"}, runtime=runtime)
    again = run_pipeline("kubernetes", core_event(), attributes, runtime=runtime)

    assert {d.decision for d in first} == {"failed:uncertain"}
    assert all(d.retryable for d in first)
    assert {d.decision for d in other} == {"duplicate"}  # another delivery: the claim holds
    assert {d.decision for d in again} == {"dispatched"}
    assert [r.verify for r in dispatcher.requests] == [True, True]
    outcomes = [f.outcome for f in reversed(runtime.store.firings())]
    assert sorted(outcomes) == ["dispatched"] * 2 + ["failed:uncertain"] * 2
