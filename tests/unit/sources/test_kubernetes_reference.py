"""The kubernetes source's ``normalize`` against the plain reference normaliser
(``tests/support/k8s_reference.py``) on varied and malformed Events: both API shapes, missing
fields, odd timestamps, unicode, wrong types. Each payload must give the same Event (field by
field, in the same order, with the same time zones and set fields), or the same error with the
same field, or the same drop; and again on a second look, when its timestamps are cached."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core.errors import InvalidEventError
from khook_core.event import Event
from khook_core.sources.base import Dropped
from khook_core.sources.kubernetes import KubernetesSource
from tests.support import k8s_reference
from tests.support.k8s_events import NOW, core_event, new_event, source

pytestmark = pytest.mark.unit

Outcome = tuple[Any, ...]

TIMES = [
    "2026-01-05T10:31:12Z",
    "2026-01-05T10:31:12.123456Z",
    "2026-01-05T12:31:12+02:00",  # the same instant as the first, another offset
    "2026-01-05T10:31:12+00:00",
    "2026-01-05T10:31:12",  # no offset: read as UTC
    "2026-01-05T10:34:59.5-00:30",
    "2026-01-05T09:00:00Z",  # stale at the default window
    "2026-01-05T10:40:00Z",  # ahead of the clock
    "0001-01-01T00:00:00Z",  # Go's zero time: not set
    "",
]
BAD_TIMES = ["yesterday", "2026-13-01T00:00:00Z", "2026-01-05T10:31:12Zjunk"]
WRONG = st.sampled_from([7, 1.5, True, [], {}, ["x"]])
"""Values of the wrong JSON type: each one stops validation, so a few fields get them."""
TEXT = st.text(max_size=12) | st.sampled_from(
    ["", "web-0", "web-7d9c8b6f5-x2x4z", "prometheus-exporter", "db-0", "é✓🙂", "a\ud800b"]
)
REASONS = st.sampled_from(
    [
        "BackOff",
        "OOMKilling",
        "Killing",
        "Failed",
        "FailedScheduling",
        "Pending",
        "Unhealthy",
        "ProbeWarning",
        "NodeNotReady",
        "Started",
        "",
    ]
) | st.text(max_size=8)
MESSAGES = st.sampled_from(
    [
        "Back-off restarting failed container",
        "Liveness probe failed",
        "Memory cgroup out of memory",
        "pod is Pending",
        "Error: container create failed",
        "",
    ]
) | st.text(max_size=16)
TIME_VALUES = st.none() | st.sampled_from(TIMES)
COUNTS = st.none() | st.integers(-3, 10)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "apiVersion": st.sampled_from(["v1", "events.k8s.io/v1", "events.k8s.io/v1beta1"]),
    "reason": REASONS,
    "message": MESSAGES,
    "note": MESSAGES,
    "type": st.sampled_from(["Warning", "Normal", "normal", "", "Odd"]),
    "count": COUNTS,
    "deprecatedCount": COUNTS,
    "series": st.fixed_dictionaries(
        {}, optional={"count": COUNTS, "lastObservedTime": TIME_VALUES}
    ),
    "eventTime": TIME_VALUES,
    "lastTimestamp": TIME_VALUES,
    "firstTimestamp": TIME_VALUES,
    "deprecatedLastTimestamp": TIME_VALUES,
    "deprecatedFirstTimestamp": TIME_VALUES,
    "reportingController": TEXT,
    "reportingComponent": TEXT,
    "reportingInstance": TEXT,
}
REF_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(["Pod", "Pod", "Node", "Deployment", ""]),
    "name": TEXT,
    "namespace": TEXT,
    "uid": TEXT,
    "apiVersion": st.sampled_from(["v1", "apps/v1", ""]),
    "fieldPath": TEXT,
}
META_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "namespace": TEXT,
    "uid": TEXT,
    "name": TEXT,
    "creationTimestamp": TIME_VALUES,
}


SHAPES: list[Callable[[], dict[str, Any]]] = [core_event, new_event]


@st.composite
def raw_events(draw: st.DrawFn) -> Any:
    """A Kubernetes Event of either shape with some fields changed, left out or null; now and
    then a malformed one (a wrong JSON type, a bad timestamp, not an object at all)."""
    shape: Callable[[], dict[str, Any]] = draw(st.sampled_from(SHAPES))
    base = shape()
    ref_key = "regarding" if "regarding" in base else "involvedObject"
    if draw(st.integers(0, 3)) == 0:  # the other shape's object reference
        other = "involvedObject" if ref_key == "regarding" else "regarding"
        base[other] = base.pop(ref_key)
        ref_key = other
    for target, fields in (
        (base, FIELDS),
        (base[ref_key], REF_FIELDS),
        (base["metadata"], META_FIELDS),
    ):
        for key, strategy in fields.items():
            if draw(st.integers(0, 3)) == 0:  # most fields as the API server writes them
                if draw(st.integers(0, 4)) == 0:
                    target.pop(key, None)
                else:
                    target[key] = draw(strategy)
    malformed = draw(st.integers(0, 5))
    if malformed == 0:
        key = draw(st.sampled_from([*FIELDS, ref_key, "metadata"]))
        base[key] = draw(WRONG | st.sampled_from(BAD_TIMES))
    elif malformed == 1 and draw(st.booleans()):
        return draw(st.sampled_from([None, [], "text", 3, {"metadata": []}, {}]))
    return base


ATTRIBUTES = st.sampled_from(
    [
        {},
        {"khook.cluster": "prod"},
        {"googclient_message_id": "m-1", "googclient_topic": "events"},
        {"khook.workload.kind": "Deployment", "khook.workload.name": "web"},
        {
            "khook.cluster": "eu",
            "khook.workload.kind": "StatefulSet",
            "khook.workload.name": "db",
            "khook.workload.namespace": "data",
        },
    ]
)


def outcome(normalize: Callable[[], list[Event]]) -> Outcome:
    """What one normalisation gave, in a form that compares everything that can differ."""
    try:
        events = normalize()
    except InvalidEventError as exc:
        return ("invalid", str(exc), exc.field, exc.status)
    except Dropped as dropped:
        return ("dropped", dropped.reason)
    return (
        "events",
        [
            (
                list(event.__dict__.items()),
                repr(event),  # time zones and value types included
                sorted(event.model_fields_set),
                sorted(event.resource.model_fields_set),
                list(event.metadata.items()),
            )
            for event in events
        ],
    )


def assert_agree(plugin: KubernetesSource, raw: Any, attributes: dict[str, str]) -> Outcome:
    """The source and the reference agree on ``raw``, twice (the second time its timestamps
    are known to the source's cache, and a known one must read the same); the outcome."""
    expected = outcome(lambda: k8s_reference.normalize(plugin, copy.deepcopy(raw), attributes))
    assert outcome(lambda: plugin.normalize(copy.deepcopy(raw), attributes)) == expected
    assert outcome(lambda: plugin.normalize(copy.deepcopy(raw), attributes)) == expected
    return expected


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_events(), attributes=ATTRIBUTES, minutes=st.sampled_from([15, 0.5, 600]))
def test_normalize_agrees_with_the_reference(
    raw: Any, attributes: dict[str, str], minutes: float
) -> None:
    assert_agree(source(minutes=minutes), raw, attributes)


def test_the_reference_sees_what_the_corpus_covers() -> None:
    """The comparison is not vacuous: the reference yields events, errors and drops alike."""
    plugin: KubernetesSource = source()
    assert outcome(lambda: k8s_reference.normalize(plugin, core_event(), {}))[0] == "events"
    assert outcome(lambda: k8s_reference.normalize(plugin, new_event(), {}))[0] == "events"
    stale = core_event(last=(NOW - timedelta(hours=2)).isoformat(), created="2026-01-04T00:00Z")
    assert outcome(lambda: k8s_reference.normalize(plugin, stale, {})) == ("dropped", "stale")
    bad = core_event(last="yesterday")
    assert outcome(lambda: k8s_reference.normalize(plugin, bad, {}))[0] == "invalid"


SAME_INSTANT = ["2026-01-05T10:31:12Z", "2026-01-05T12:31:12+02:00", "2026-01-05T10:31:12"]


@pytest.mark.parametrize("first", SAME_INSTANT)
@pytest.mark.parametrize("second", SAME_INSTANT)
@pytest.mark.parametrize("shape", [core_event, new_event])
def test_equal_instants_in_other_offsets_pick_the_same_field(
    first: str, second: str, shape: Callable[[], dict[str, Any]]
) -> None:
    """When several fields name the same instant, which one's offset the Event carries is
    part of its output (``timestamp``, ``first_timestamp``): it must be the reference's."""
    plugin = source()
    for fields in (
        {"series": {"lastObservedTime": first}, "eventTime": second},
        {"eventTime": first, "lastTimestamp": second, "deprecatedLastTimestamp": second},
        {"lastTimestamp": first, "deprecatedLastTimestamp": first},
        {"series": {"lastObservedTime": first}, "lastTimestamp": second, "eventTime": None},
        {"eventTime": None, "lastTimestamp": None, "firstTimestamp": None},
    ):
        raw = shape() | fields
        raw["metadata"]["creationTimestamp"] = second
        assert_agree(plugin, raw, {})


@pytest.mark.parametrize("count", [None, -3, 0, 1, 7])
@pytest.mark.parametrize("field", ["count", "deprecatedCount", "series"])
@pytest.mark.parametrize("shape", [core_event, new_event])
def test_counts_of_every_field_and_sign_read_as_the_reference(
    count: int | None, field: str, shape: Callable[[], dict[str, Any]]
) -> None:
    raw = shape() | ({"series": {"count": count}} if field == "series" else {field: count})
    assert assert_agree(source(), raw, {})[0] == "events"
