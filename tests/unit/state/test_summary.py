"""Backlog summaries: exact counts, bounded lists, and a flag when the lists are cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from khook_core.storm.records import MAX_SUMMARY_ITEMS, Summary

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def one(pod: int, reason: str = "BackOff") -> Summary:
    at = T0 + timedelta(seconds=pod)
    return Summary(
        count=1, first=at, last=at, resources=(f"shop/Pod/web-{pod}",), reasons=(reason,)
    )


def test_lists_stay_bounded_the_count_exact_and_the_cut_is_flagged():
    total = one(0)
    for pod in range(1, MAX_SUMMARY_ITEMS):
        total = total.merge(one(pod))
    assert len(total.resources) == MAX_SUMMARY_ITEMS
    assert not total.truncated  # exactly full: nothing left out yet

    total = total.merge(one(MAX_SUMMARY_ITEMS)).merge(one(MAX_SUMMARY_ITEMS + 1))

    assert total.count == MAX_SUMMARY_ITEMS + 2
    assert len(total.resources) == MAX_SUMMARY_ITEMS
    assert total.truncated
    assert total.last == T0 + timedelta(seconds=MAX_SUMMARY_ITEMS + 1)
    assert Summary.from_json(total.to_json()) == total  # survives the store
    assert one(1).merge(total).truncated  # and further merges


def test_repeats_of_a_listed_resource_do_not_count_as_a_cut():
    total = one(0)
    for pod in range(1, MAX_SUMMARY_ITEMS):
        total = total.merge(one(pod))
    total = total.merge(one(3)).merge(one(0))
    assert not total.truncated
    assert total.to_json()["truncated"] is False
