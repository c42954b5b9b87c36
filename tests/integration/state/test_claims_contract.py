"""The ClaimStore contract, run against every backend (see conftest.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from khook_core.state.base import ClaimStore, DedupKey, StateStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
STALE = timedelta(seconds=50)
K = DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|")

Contend = Callable[[Callable[[StateStore], list[Any]], int], list[Any]]


def test_a_claim_is_granted_once_until_it_expires(store: ClaimStore):
    assert store.claim(key=K, ttl=TTL, now=T0)
    assert not store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=9))
    assert store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=10))
    assert not store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=19))  # the new expiry


def test_release_lets_the_next_delivery_claim_again(store: ClaimStore):
    assert store.claim(key=K, ttl=TTL, now=T0)
    store.release(key=K)
    store.release(key=K)  # idempotent
    assert store.claim(key=K, ttl=TTL, now=T0)
    store.release(key=K)
    assert store.claim(key=K, ttl=TTL, now=T0 + timedelta(seconds=1))
    store.release(key=DedupKey("never-claimed"))  # harmless


def test_confirm_keeps_the_claim_and_its_expiry(store: ClaimStore):
    assert store.claim(key=K, ttl=TTL, now=T0)
    store.confirm(key=K, outcome="dispatched", task_id="t-1")
    assert not store.claim(key=K, ttl=TTL, now=T0 + timedelta(minutes=1))
    assert store.claim(key=K, ttl=TTL, now=T0 + TTL)  # not extended by the confirmation


def test_confirming_or_marking_a_claim_that_is_gone_is_harmless(store: ClaimStore):
    gone = DedupKey("never/claimed")
    store.confirm(key=gone, outcome="dispatched")
    store.mark_uncertain(key=gone)
    assert store.claim(key=gone, ttl=TTL, now=T0)  # neither created a claim


def test_a_claim_belongs_to_its_delivery(store: ClaimStore):
    mine, other = "owner-of-m-1", "owner-of-m-2"

    def claim(owner: str, at: datetime, key: DedupKey = K) -> str:
        return store.claim_firing(key=key, owner=owner, ttl=TTL, now=at, stale_after=STALE)

    assert claim(mine, T0) == "won"
    assert claim(other, T0 + timedelta(seconds=1)) == "held"  # another delivery: a duplicate
    assert claim(mine, T0 + timedelta(seconds=10)) == "busy"  # may still be running
    assert claim(mine, T0 + STALE) == "resumed"  # its attempt never reported back
    assert claim(mine, T0 + STALE + timedelta(seconds=1)) == "busy"  # the resumer runs now
    store.mark_uncertain(key=K)
    assert claim(other, T0 + STALE + timedelta(seconds=2)) == "held"
    assert claim(mine, T0 + STALE + timedelta(seconds=2)) == "uncertain"  # at once, ask first
    # Its attempt died again unmarked: still uncertain once stale (a send may have landed).
    assert claim(mine, T0 + 2 * STALE + timedelta(seconds=2)) == "uncertain"
    store.confirm(key=K, outcome="dispatched", task_id="t-1")
    assert claim(mine, T0 + 3 * STALE) == "held"  # confirmed: a duplicate, even for its owner
    assert claim(other, T0 + TTL) == "won"  # expired: a new window
    store.release(key=K)
    assert claim(other, T0 + TTL + timedelta(seconds=1)) == "won"
    plain = DedupKey("coalesce|shop/web|pod-restart|web")
    assert store.claim(key=plain, ttl=TTL, now=T0)
    assert claim(mine, T0 + STALE, plain) == "held"  # a plain claim is nobody's delivery


def test_racing_callers_of_a_new_key_have_one_winner(contend: Contend):
    keys = [DedupKey(f"new/{i}") for i in range(40)]
    wins = contend(lambda s: [k for k in keys if s.claim(key=k, ttl=TTL, now=T0)], 4)
    assert sorted(wins) == sorted(keys)


def test_racing_callers_take_over_an_expired_claim_exactly_once(
    store: ClaimStore, contend: Contend
):
    keys = [DedupKey(f"expired/{i}") for i in range(40)]
    for key in keys:
        assert store.claim(key=key, ttl=TTL, now=T0 - timedelta(hours=1))
    wins = contend(lambda s: [k for k in keys if s.claim(key=k, ttl=TTL, now=T0)], 4)
    assert sorted(wins) == sorted(keys)


def test_of_racing_redeliveries_of_a_stale_claim_exactly_one_resumes_it(
    store: ClaimStore, contend: Contend
):
    keys = [DedupKey(f"stale/{i}") for i in range(20)]
    for key in keys:
        assert store.claim_firing(key=key, owner="m-1", ttl=TTL, now=T0, stale_after=STALE) == "won"

    def redeliver(s: StateStore) -> list[tuple[DedupKey, str]]:
        return [
            (k, s.claim_firing(key=k, owner="m-1", ttl=TTL, now=T0 + STALE, stale_after=STALE))
            for k in keys
        ]

    results = contend(redeliver, 4)
    assert Counter(result for _, result in results) == {"resumed": 20, "busy": 60}
    assert sorted(k for k, result in results if result == "resumed") == sorted(keys)
