"""An incident's members: a join appends in place, and no incident handed out sees it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from khook_core.state import incident_changes as changes
from khook_core.state.base import Incident

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def join(current: Incident | None, member: str, *, resolvable: bool = False) -> Incident:
    changed = changes.correlate(
        current,
        workload="shop/Deployment/checkout",
        member=member,
        window=WINDOW,
        now=NOW,
        hook="shop/crash",
        agent="kagent/k8s-agent",
        resolvable=resolvable,
        evidence="",
    )
    assert changed is not None
    return changed[0]


def test_a_join_adds_its_member_without_copying_the_ones_held():
    incident = join(None, "a0")
    for n in range(1, 150):
        before = incident.members
        incident = join(incident, f"a{n}")
        assert incident.members._record is before._record  # type: ignore[attr-defined]

    assert list(incident.members) == [f"a{n}" for n in range(150)]
    assert before == {f"a{n}": "event" for n in range(149)}


def test_joins_to_an_older_incident_keep_both_lines_apart():
    opened = join(None, "a0")
    first = join(opened, "e1")
    second = join(opened, "e2")  # opened is no longer the latest: its members are copied

    assert dict(first.members) == {"a0": "event", "e1": "event"}
    assert dict(second.members) == {"a0": "event", "e2": "event"}
    assert "e2" not in first.members
    assert "e1" not in second.members
    assert dict(opened.members) == {"a0": "event"}
    assert first.members.get("e2") is None


def test_a_resolved_member_changes_state_in_a_record_of_its_own():
    opened = join(None, "alert/a1", resolvable=True)
    held = join(opened, "alert/a2", resolvable=True)
    resolved = changes.resolve(held, member="alert/a1", now=NOW)
    assert resolved is not None
    later = join(resolved, "kubernetes/e1")

    assert dict(held.members) == {"alert/a1": "firing", "alert/a2": "firing"}
    assert list(later.members.items()) == [
        ("alert/a1", "resolved"),
        ("alert/a2", "firing"),
        ("kubernetes/e1", "event"),
    ]
    assert changes.to_json(later)["members"] == dict(later.members)


def test_members_read_back_from_a_stored_body_join_like_any_other():
    stored = changes.from_json(changes.to_json(join(join(None, "a0"), "e1")))
    joined = join(stored, "e2")

    assert stored.members == {"a0": "event", "e1": "event"}
    assert joined.members == {"a0": "event", "e1": "event", "e2": "event"}
    assert repr(joined.members) == repr(dict(joined.members))


def test_reading_members_while_another_thread_joins_never_breaks():
    incident = join(None, "a0")
    for n in range(1, 50):
        incident = join(incident, f"a{n}")
    held = incident
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                assert len(list(held.members.items())) == 50
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(50, changes.MAX_INCIDENT_MEMBERS):
        incident = join(incident, f"e{n}")
    done.set()
    reader.join()

    assert failures == []
    assert len(incident.members) == changes.MAX_INCIDENT_MEMBERS
