"""Silences in the pipeline: muted before the claim, read once an interval, run at the end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core import prompt
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.pipeline import run_pipeline, sweep
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.silencing.gate import SilenceGate
from khook_core.state.base import SilenceRecord
from khook_core.state.memory import MemoryStateStore
from khook_core.state.silence_memory import MemorySilenceStore
from khook_core.storm.records import BacklogKind
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


class Ticks:
    """An injected monotonic clock for the gate's refresh interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def silences() -> MemorySilenceStore:
    return MemorySilenceStore()


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def runtime(tmp_path: Path, silences: MemorySilenceStore, ticks: Ticks) -> Iterator[Runtime]:
    rt = Runtime.build(
        Settings(config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    rt.silences = SilenceGate(lambda: silences, interval=10, monotonic=ticks)
    yield rt
    rt.close()


def silence(
    matcher: str = 'event.resource.namespace == "shop"',
    *,
    hook: str = "",
    ends: timedelta = timedelta(hours=2),
    drop: bool = False,
    id: str = "s1",
) -> SilenceRecord:
    return SilenceRecord(
        id=id,
        matcher=matcher,
        author="ana",
        comment="db migration",
        starts_at=NOW - timedelta(minutes=1),
        ends_at=NOW + ends,
        created_at=NOW,
        hook=hook,
        drop=drop,
    )


def decisions_of(runtime: Runtime, **event: object) -> list[tuple[str, str | None]]:
    found = run_pipeline("kubernetes", core_event(**event), {}, runtime=runtime)  # type: ignore[arg-type]
    return [(d.decision, d.hook) for d in found]


def test_a_matching_event_is_suppressed_with_the_silence_id_and_nothing_is_claimed(
    runtime: Runtime, silences: MemorySilenceStore
):
    silences.add_silence(silence=silence(hook="shop/web"))
    found = run_pipeline("kubernetes", core_event(), {}, runtime=runtime)
    assert [(d.decision, d.hook) for d in found] == [
        ("suppressed:silenced", "shop/web"),
        ("dispatched", "shop/audit"),
    ]
    assert "silence s1 (db migration)" in found[0].detail
    store = runtime.store
    assert isinstance(store, MemoryStateStore)
    key = found[0].key
    assert key is not None
    # Nothing claimed: the firing's key is free for the same event once the silence ends.
    assert store.claim(key=key, ttl=timedelta(minutes=1), now=NOW)  # type: ignore[arg-type]
    silenced = [f for f in store.firings() if f.hook == "shop/web"]
    assert [(f.outcome, f.extra) for f in silenced] == [("suppressed:silenced", {"silence": "s1"})]
    [record] = silenced
    # No prompt was rendered or sent: the empty prompt's hash, no error, task or incident.
    assert (record.prompt_hash, record.error, record.task_id, record.task_state) == (
        prompt.prompt_hash(""),
        "",
        "",
        "",
    )
    assert (record.incident, record.agent, record.key) == ("", found[0].agent, key)


def test_a_non_matching_event_still_fires(runtime: Runtime, silences: MemorySilenceStore):
    silences.add_silence(silence=silence('event.resource.namespace == "payments"'))
    assert {d for d, _ in decisions_of(runtime)} == {"dispatched"}


def test_a_silence_added_later_applies_from_the_next_read_of_the_interval(
    runtime: Runtime, silences: MemorySilenceStore, ticks: Ticks
):
    assert {d for d, _ in decisions_of(runtime, name="web-1")} == {"dispatched"}
    silences.add_silence(silence=silence())
    # Within the interval the cached (empty) list still answers: one read an interval.
    assert {d for d, _ in decisions_of(runtime, name="web-2")} == {"dispatched"}
    ticks.now += 10
    assert {d for d, _ in decisions_of(runtime, name="web-3")} == {"suppressed:silenced"}


def test_expire_restores_firing_of_the_same_event(
    runtime: Runtime, silences: MemorySilenceStore, ticks: Ticks
):
    silences.add_silence(silence=silence())
    assert {d for d, _ in decisions_of(runtime)} == {"suppressed:silenced"}
    silences.expire_silence(id="s1", now=NOW, by="ana")
    ticks.now += 10
    assert {d for d, _ in decisions_of(runtime)} == {"dispatched"}


def test_a_silence_stops_muting_at_its_end_without_a_new_read(
    tmp_path: Path, silences: MemorySilenceStore, ticks: Ticks
):
    clock = Clock(NOW)
    rt = Runtime.build(
        Settings(config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    rt.silences = SilenceGate(lambda: silences, interval=3600, monotonic=ticks)
    silences.add_silence(silence=silence(ends=timedelta(minutes=5)))
    assert {d for d, _ in decisions_of(rt)} == {"suppressed:silenced"}
    clock.fixed = NOW + timedelta(minutes=5)
    assert {d for d, _ in decisions_of(rt)} == {"dispatched"}
    rt.close()


def test_the_end_of_a_silence_gives_one_summary_run_per_hook(
    runtime: Runtime, silences: MemorySilenceStore, ticks: Ticks
):
    silences.add_silence(silence=silence())
    for n in range(5):
        decisions_of(runtime, name=f"web-{n}", uid=f"u{n}")
    store = runtime.store
    keys = store.backlog_keys(limit=10)
    assert sorted((k.kind, k.name) for k in keys) == [
        (BacklogKind.SILENCE, "s1|shop/audit"),
        (BacklogKind.SILENCE, "s1|shop/web"),
    ]
    assert sweep(runtime=runtime) == []  # still in force: nothing run, nothing taken
    silences.expire_silence(id="s1", now=NOW, by="ana")
    runs = sweep(runtime=runtime)
    assert sorted((d.decision, d.hook) for d in runs) == [
        ("dispatched", "shop/audit"),
        ("dispatched", "shop/web"),
    ]
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    assert len(dispatcher.requests) == 2
    assert all("5 event(s) held back by silence s1" in r.prompt for r in dispatcher.requests)
    assert sweep(runtime=runtime) == []


def test_a_dropping_silence_leaves_nothing_to_summarise(
    runtime: Runtime, silences: MemorySilenceStore
):
    silences.add_silence(silence=silence(drop=True))
    assert {d for d, _ in decisions_of(runtime)} == {"suppressed:silenced"}
    assert runtime.store.backlog_keys(limit=10) == []
