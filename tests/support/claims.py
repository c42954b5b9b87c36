"""The rule of ``claim_firing``, checked the same way against every state store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from khook_core.state.base import DedupKey, StateStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
K = DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|")
STALE = timedelta(seconds=50)


def check_a_claim_belongs_to_its_delivery(store: StateStore) -> None:
    """The rule of ``claim_firing``, the same for every store (the Firestore test calls it)."""
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
