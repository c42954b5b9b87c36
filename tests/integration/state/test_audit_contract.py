"""The AuditLog contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from khook_core.state import audit_fields
from khook_core.state.base import AuditLog, Firing
from tests.support.audit import KEY as K
from tests.support.audit import NOW, firing

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_firings_are_filtered_by_hook_and_time_newest_first(store: AuditLog):
    for minute, hook in ((0, "shop/a"), (5, "shop/b"), (9, "shop/a")):
        store.record(
            Firing(
                key=K,
                hook=hook,
                event_id=f"e{minute}",
                event_type="pod-restart",
                source="kubernetes",
                resource="shop/Pod/web-0",
                agent="kagent/k8s",
                prompt_hash="h",
                outcome="dispatched",
                at=T0 + timedelta(minutes=minute),
                task_id=f"t{minute}",
            )
        )
    assert [f.event_id for f in store.firings()] == ["e9", "e5", "e0"]
    assert [f.event_id for f in store.firings(hook="shop/a")] == ["e9", "e0"]
    assert [f.event_id for f in store.firings(since=T0 + timedelta(minutes=4))] == ["e9", "e5"]
    assert store.firings(limit=1)[0].task_id == "t9"


def test_firings_come_back_newest_first_with_every_field(store: AuditLog):
    for i in range(3):
        store.record(firing(f"e{i}", at=NOW + timedelta(seconds=i)))
    got = store.firings()
    assert [f.event_id for f in got] == ["e2", "e1", "e0"]
    assert got[0] == firing("e2", at=NOW + timedelta(seconds=2))
    assert type(got[0].at) is datetime


def test_firings_filter_by_hook_since_and_limit(store: AuditLog):
    for i in range(4):
        store.record(firing(f"w{i}", at=NOW + timedelta(minutes=i)))
    store.record(firing("o0", hook="shop/other", at=NOW + timedelta(minutes=9)))
    assert [f.event_id for f in store.firings(hook="shop/web")] == ["w3", "w2", "w1", "w0"]
    assert [f.event_id for f in store.firings(since=NOW + timedelta(minutes=2))] == [
        "o0",
        "w3",
        "w2",
    ]
    assert [
        f.event_id
        for f in store.firings(hook="shop/web", since=NOW + timedelta(minutes=1), limit=2)
    ] == ["w3", "w2"]
    assert store.firings(limit=0) == []


def test_a_failure_keeps_its_outcome_and_error(store: AuditLog):
    store.record(firing("e0", outcome="failed:transient", error="agent down"))
    [got] = store.firings()
    assert (got.outcome, got.error) == ("failed:transient", "agent down")


def test_every_field_of_the_record_comes_back_as_written(store: AuditLog):
    """Built from the field list, so a field added to ``Firing`` is checked in every store."""
    texts = {name: f"{name}: ns/ä\n✓" for name in audit_fields.TEXT_FIELDS}
    written = Firing(
        **texts,  # type: ignore[arg-type]
        at=datetime(2026, 1, 5, 12, 35, 7, 123457, tzinfo=UTC),
        extra={"recovered": "found", "state": "submitted"},
    )
    assert {f.name for f in dataclasses.fields(Firing)} == {*texts, "at", "extra"}

    store.record(written)

    assert store.firings() == [written]
