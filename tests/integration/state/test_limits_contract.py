"""The LimitStore contract (rate-limit slots, run leases, circuits), run against every backend
(see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from khook_core.state.base import LimitStore, StateStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW = T0 + timedelta(seconds=30)  # inside the 10:00 window, not at its start

Contend = Callable[[Callable[[StateStore], list[Any]], int], list[Any]]


def test_slots_count_to_the_limit_within_one_window(store: LimitStore):
    take = store.take_slot
    assert [take(key="rate|hook|a", limit=3, window=HOUR, now=NOW) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert take(key="rate|hook|a", limit=3, window=HOUR, now=NOW + HOUR)  # the next window
    assert take(key="rate|hook|b", limit=3, window=HOUR, now=NOW)  # another key, its own count
    assert not take(key="rate|hook|c", limit=0, window=HOUR, now=NOW)
    assert not take(key="rate|hook|c", limit=0, window=HOUR, now=NOW + HOUR)


def test_slot_windows_are_aligned_to_the_clock_and_a_new_one_starts_afresh(store: LimitStore):
    def take(at: datetime) -> bool:
        return store.take_slot(key="rate|agent|x", limit=2, window=HOUR, now=at)

    assert [take(NOW), take(NOW + timedelta(minutes=10))] == [True, True]
    assert not take(T0 + timedelta(minutes=59, seconds=59))  # still the 10:00 window
    # 11:00 starts a window although less than an hour has passed since the first slot, and
    # it has the whole limit again, not just one slot.
    at = T0 + HOUR
    assert [take(at), take(at), take(at + timedelta(minutes=30))] == [True, True, False]
    # Windows are per key: a window that started later for another key is its own.
    assert store.take_slot(key="rate|agent|y", limit=1, window=timedelta(minutes=10), now=at)
    assert not store.take_slot(
        key="rate|agent|y", limit=1, window=timedelta(minutes=10), now=at + timedelta(minutes=9)
    )
    assert store.take_slot(
        key="rate|agent|y", limit=1, window=timedelta(minutes=10), now=at + timedelta(minutes=10)
    )


def test_a_returned_slot_can_be_taken_again_in_its_window_only(store: LimitStore):
    def take(at: datetime, key: str = "rate|hook|a") -> bool:
        return store.take_slot(key=key, limit=1, window=HOUR, now=at)

    assert take(NOW)
    assert not take(NOW)
    store.return_slot(key="rate|hook|a", window=HOUR, now=NOW)
    assert take(NOW + timedelta(minutes=1))  # the same window: the returned slot
    store.return_slot(key="rate|hook|a", window=HOUR, now=NOW - HOUR)  # another window: ignored
    assert not take(NOW + timedelta(minutes=2))
    store.return_slot(key="rate|hook|b", window=HOUR, now=NOW)  # never taken: stays at zero
    assert take(NOW, "rate|hook|b")
    assert not take(NOW, "rate|hook|b")
    # Returned at the very time it was taken.
    assert take(NOW, "rate|hook|r")
    assert not take(NOW, "rate|hook|r")
    store.return_slot(key="rate|hook|r", window=HOUR, now=NOW)
    assert take(NOW, "rate|hook|r")


def test_a_slot_returned_twice_does_not_count_below_zero(store: LimitStore):
    assert store.take_slot(key="rate|hook|z", limit=1, window=HOUR, now=NOW)
    store.return_slot(key="rate|hook|z", window=HOUR, now=NOW)
    store.return_slot(key="rate|hook|z", window=HOUR, now=NOW)  # one too many
    assert store.take_slot(key="rate|hook|z", limit=1, window=HOUR, now=NOW)
    assert not store.take_slot(key="rate|hook|z", limit=1, window=HOUR, now=NOW)


def test_a_clock_behind_cannot_reopen_an_earlier_window(store: LimitStore):
    def take(at: datetime) -> bool:
        return store.take_slot(key="rate|agent|z", limit=1, window=HOUR, now=at)

    assert take(T0 + timedelta(minutes=59, seconds=59))
    assert take(T0 + HOUR + timedelta(seconds=1))  # the 11:00 window
    assert not take(T0 + timedelta(minutes=59, seconds=59))  # another instance, 2 s behind


def test_concurrent_slot_takers_never_exceed_the_limit(contend: Contend):
    got = contend(
        lambda s: [
            s.take_slot(key="rate|agent|x", limit=7, window=HOUR, now=NOW) for _ in range(6)
        ],
        4,
    )
    assert got.count(True) == 7


def test_leases_cap_concurrent_runs_until_they_lapse(store: LimitStore):
    ttl = timedelta(minutes=5)
    acquire = store.acquire_lease
    leases = [acquire(scope="runs", cap=2, ttl=ttl, now=NOW) for _ in range(3)]
    assert [bool(lease) for lease in leases] == [True, True, False]
    assert leases[0] != leases[1]
    assert acquire(scope="runs", cap=2, ttl=ttl, now=NOW + ttl)
    assert acquire(scope="none", cap=0, ttl=ttl, now=NOW) is None


def test_a_released_lease_is_free_again_and_a_retaken_one_is_not_released(store: LimitStore):
    ttl = timedelta(minutes=5)
    first = store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW)
    assert first is not None
    assert store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW) is None

    store.release_lease(scope="runs", lease=first)
    second = store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW)

    assert second is not None
    store.release_lease(scope="runs", lease=first)  # long gone: must not free the new holder's
    assert store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW) is None
    # Lapsed and retaken by another: the old holder's release leaves the new lease alone.
    third = store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW + ttl)
    assert third is not None
    store.release_lease(scope="runs", lease=second)
    assert store.acquire_lease(scope="runs", cap=1, ttl=ttl, now=NOW + ttl) is None


def test_each_lease_lapses_on_its_own_after_its_ttl(store: LimitStore):
    ttl = timedelta(minutes=5)

    def acquire(minutes: float, scope: str = "runs") -> bool:
        at = T0 + timedelta(minutes=minutes)
        return store.acquire_lease(scope=scope, cap=2, ttl=ttl, now=at) is not None

    assert [acquire(0), acquire(2), acquire(4.9)] == [True, True, False]
    assert acquire(4.9, scope="other")  # scopes are capped separately
    assert acquire(5)  # the first lapsed: one free lease, taken
    assert not acquire(6.9)  # the second is live until 7, the new one until 10
    assert acquire(7)
    assert not acquire(7)
    assert not acquire(9.9)
    assert [acquire(12), acquire(12), acquire(12)] == [True, True, False]  # all lapsed


def test_concurrent_lease_takers_get_exactly_the_cap(contend: Contend):
    got = contend(
        lambda s: [
            s.acquire_lease(scope="runs", cap=3, ttl=HOUR, now=NOW) is not None for _ in range(4)
        ],
        4,
    )
    assert got.count(True) == 3


@pytest.mark.parametrize("threshold", [2, 3])
def test_a_circuit_opens_at_the_threshold_is_half_open_after_its_cool_down_and_closes_on_success(
    store: LimitStore, threshold: int
):
    cool = timedelta(minutes=1)

    def fail(at: datetime) -> bool:
        return store.record_failure(key="circuit|a", threshold=threshold, cool_down=cool, now=at)

    assert store.circuit_state(key="circuit|a", now=T0) == "closed"
    assert [fail(T0) for _ in range(threshold)] == [False] * (threshold - 1) + [True]
    assert store.circuit_state(key="circuit|a", now=T0 + timedelta(seconds=59)) == "open"
    assert store.circuit_state(key="circuit|a", now=T0 + cool) == "half-open"
    assert fail(T0 + cool)  # the probe failed: open again for a cool-down
    assert store.circuit_state(key="circuit|a", now=T0 + cool + timedelta(seconds=1)) == "open"
    assert store.circuit_state(key="circuit|a", now=T0 + cool + timedelta(seconds=30)) == "open"
    store.record_success(key="circuit|a")
    assert store.circuit_state(key="circuit|a", now=T0) == "closed"
    assert store.circuit_state(key="circuit|a", now=T0 + cool) == "closed"
    assert store.circuit_state(key="circuit|never", now=T0) == "closed"
    assert not fail(T0 + cool)  # counts afresh


def test_concurrent_failures_all_count(contend: Contend):
    cool = timedelta(minutes=1)
    opened = contend(
        lambda s: [
            s.record_failure(key="circuit|b", threshold=12, cool_down=cool, now=NOW)
            for _ in range(3)
        ],
        4,
    )
    assert opened.count(True) == 1  # only the twelfth failure reached the threshold
