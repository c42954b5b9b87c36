"""The BacklogStore contract, run against every backend (see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from khook_core.state.base import BacklogStore, StateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary

NOW = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
LATER = NOW + timedelta(minutes=3)

GROUP_G = BacklogKey(BacklogKind.GROUP, "g")  # stored as "coalesce|g"
BUDGET_H = BacklogKey(BacklogKind.BUDGET, "h")  # stored as "budget|h"
BUDGET_HOT = BacklogKey(BacklogKind.BUDGET, "hot")
BUDGET_ONCE = BacklogKey(BacklogKind.BUDGET, "once")

Contend = Callable[[Callable[[StateStore], list[Any]], int], list[Any]]


def held(count: int, resource: str, at: datetime = NOW) -> Backlog:
    return Backlog(
        Summary(count=count, first=at, last=at, resources=(resource,), reasons=("BackOff",)),
        hook="shop/web",
        event=f'{{"resource": "{resource}", "at": "{at.isoformat()}"}}',
    )


def test_backlogs_merge_keep_the_latest_event_and_are_taken_once(store: BacklogStore):
    store.add_backlog(key=GROUP_G, backlog=held(2, "shop/Pod/b", LATER))
    store.add_backlog(key=GROUP_G, backlog=held(3, "shop/Pod/a"))
    store.add_backlog(key=BUDGET_H, backlog=held(1, "shop/Pod/c"))
    assert sorted(store.backlog_keys(limit=10)) == [BUDGET_H, GROUP_G]
    assert len(store.backlog_keys(limit=1)) == 1

    taken = store.take_backlog(key=GROUP_G)

    assert taken == Backlog(
        Summary(
            count=5,
            first=NOW,
            last=LATER,
            resources=("shop/Pod/b", "shop/Pod/a"),
            reasons=("BackOff",),
        ),
        hook="shop/web",
        event=held(2, "shop/Pod/b", LATER).event,  # the latest event, not the last one added
    )
    assert store.take_backlog(key=GROUP_G) is None
    assert store.backlog_keys(limit=10) == [BUDGET_H]


def test_concurrent_backlog_adds_keep_an_exact_count(store: BacklogStore, contend: Contend):
    def add(own: StateStore) -> list[bool]:
        for i in range(5):
            own.add_backlog(key=BUDGET_HOT, backlog=held(1, f"shop/Pod/p-{i}"))
        return []

    contend(add, 4)
    taken = store.take_backlog(key=BUDGET_HOT)
    assert taken is not None
    assert taken.summary.count == 20


def test_of_concurrent_takers_exactly_one_gets_the_backlog(store: BacklogStore, contend: Contend):
    store.add_backlog(key=BUDGET_ONCE, backlog=held(4, "shop/Pod/a"))
    taken = contend(lambda own: [own.take_backlog(key=BUDGET_ONCE)], 4)
    assert [b.summary.count for b in taken if b is not None] == [4]
    assert store.backlog_keys(limit=10) == []
