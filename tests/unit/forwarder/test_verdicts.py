"""The pre-filter's verdicts, judged without building Events, against the route that built them.

The filter asks the source only for the event types an object would yield
(``KubernetesSource.event_types_of``) and reads the last occurrence through the source's cache of
parsed timestamps. The reference here is the route it replaced: ``normalize`` (every Event
built) and ``MappingTable.drop_reason`` of each, after ``parse_time`` of every timestamp field.
Every object must get the same verdict from both: the same reason, the same decision to
publish, the same last occurrence (time zone included), on both API shapes, fresh and stale,
Normal and Warning, with broken fields.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from khook_core.errors import InvalidEventError
from khook_core.forwarder.filtering import EventFilter, last_occurrence
from khook_core.mapping import MappingTable
from khook_core.sources.base import Dropped
from khook_core.sources.kubernetes import KubernetesSource
from khook_core.timeparse import parse_time
from tests.support import k8s_events
from tests.support.forwarder import NOW, REPO, event, make_filter
from tests.support.kube_api import CORE_API, EVENTS_API, FakeKubeApi
from tests.unit.sources.test_kubernetes_reference import BAD_TIMES, TIMES, WRONG, raw_events

pytestmark = pytest.mark.unit

Judged = tuple[str, bool, datetime | None, str]
"""(reason, published, last occurrence, its repr): what a verdict decides."""


def reference_last_occurrence(obj: dict[str, Any]) -> datetime | None:
    """The latest timestamp field, each read by ``parse_time`` (the filter's former reading)."""
    series, meta = obj.get("series"), obj.get("metadata")
    candidates = [
        series.get("lastObservedTime") if isinstance(series, dict) else None,
        obj.get("eventTime"),
        obj.get("lastTimestamp"),
        obj.get("deprecatedLastTimestamp"),
        meta.get("creationTimestamp") if isinstance(meta, dict) else None,
    ]
    times = [t for t in (parse_time(c, "timestamp") for c in candidates) if t is not None]
    return max(times) if times else None


def reference_rejection(event_filter: EventFilter, obj: dict[str, Any]) -> str | None:
    """Why the functions drop ``obj``, from the Events ``normalize`` builds."""
    try:
        events = event_filter.source.normalize(obj, event_filter.attributes(obj))
    except Dropped as dropped:
        return dropped.reason
    except InvalidEventError:
        return "invalid"
    reasons = [event_filter.mapping.drop_reason(e.source, e.type) for e in events]
    if not reasons:
        return "no-event"
    if any(reason is None for reason in reasons):
        return None
    return next(r for r in reasons if r is not None)


def reference_verdict(
    event_filter: EventFilter, kind: str, obj: dict[str, Any], newer_than: datetime
) -> Judged:
    """``EventFilter.decide``'s decision, taken along the reference route."""
    if kind == "DELETED":
        return ("deleted", False, None, "None")
    try:
        last = reference_last_occurrence(obj)
    except InvalidEventError:
        last = None
    if last is None:
        if not event_filter.forward_all:
            return ("invalid", False, None, "None")
    elif last <= newer_than:
        return ("stale", False, last, repr(last))
    if not event_filter.forward_all:
        reason = reference_rejection(event_filter, obj)
        if reason is not None:
            return (reason, False, last, repr(last))
    return ("", True, last, repr(last))


def verdict(
    event_filter: EventFilter, kind: str, obj: dict[str, Any], newer_than: datetime
) -> Judged:
    decided = event_filter.decide(kind, obj, newer_than=newer_than)
    assert (decided.message is None) == bool(decided.reason)
    return (decided.reason, decided.message is not None, decided.last, repr(decided.last))


def assert_same_verdict(
    event_filter: EventFilter, obj: dict[str, Any], newer_than: datetime, kind: str = "ADDED"
) -> Judged:
    """Both routes agree on ``obj`` (a copy each: neither may lean on the other's reading)."""
    expected = reference_verdict(event_filter, kind, copy.deepcopy(obj), newer_than)
    assert verdict(event_filter, kind, copy.deepcopy(obj), newer_than) == expected
    return expected


def mappings() -> list[MappingTable]:
    """The project's table, and one where Normal restarts fire, probes are off and OOM kills
    are unmapped (every verdict of the mapping can be reached)."""
    table = MappingTable.load(REPO / "config" / "event-mappings.yaml")
    entries = dict(table.entries)
    restart, probe = ("kubernetes", "pod-restart"), ("kubernetes", "probe-failed")
    entries[restart] = dataclasses.replace(entries[restart], include_normal=True)
    entries[probe] = dataclasses.replace(entries[probe], enabled=False)
    del entries[("kubernetes", "oom-kill")]
    return [table, MappingTable(entries)]


MAPPINGS = mappings()


def filter_of(
    mapping: MappingTable, *, minutes: float = 15, forward_all: bool = False, api: str = EVENTS_API
) -> EventFilter:
    """A filter on ``mapping`` with the source's clock at ``k8s_events.NOW``."""
    return EventFilter(
        source=k8s_events.source(mapping, minutes),
        mapping=mapping,
        api=api,
        cluster="prod-eu",
        forward_all=forward_all,
        clock=lambda: k8s_events.NOW,
    )


def storm_objects() -> list[dict[str, Any]]:
    """The benchmark's storm rows in both API shapes, fresh and stale, plus the project's
    sample Events and the filter tests' own objects."""
    rows = [
        ("Scheduled", "Normal", "Successfully assigned shop/web-0 to node-3", "Pod"),
        ("Pulled", "Normal", 'Successfully pulled image "registry/shop/web:1.4.2"', "Pod"),
        ("Killing", "Normal", "Stopping container app", "Pod"),
        ("Killing", "Warning", "Container app exceeded its memory: out of memory", "Pod"),
        ("ScalingReplicaSet", "Normal", "Scaled up replica set web-7d9 to 3", "Deployment"),
        ("SuccessfulCreate", "Normal", "Created pod: web-7d9-x2x1k", "ReplicaSet"),
        ("BackOff", "Warning", "Back-off restarting failed container app", "Pod"),
        ("BackOff", "Normal", "Back-off restarting failed container app", "Pod"),
        ("Unhealthy", "Warning", "Readiness probe failed: statuscode: 503", "Pod"),
        ("FailedScheduling", "Warning", "0/3 nodes are available: 3 Insufficient cpu.", "Pod"),
        ("FailedMount", "Warning", 'MountVolume.SetUp failed for volume "certs"', "Pod"),
        ("OOMKilling", "Warning", "Memory cgroup out of memory: Killed process 4242", "Pod"),
        ("NodeNotReady", "Normal", "Node node-3 status is now: NodeNotReady", "Node"),
        ("NodeNotReady", "Normal", "Node node-3 status is now: NodeNotReady", "Pod"),
    ]
    objects = []
    for api in (EVENTS_API, CORE_API):
        shaper = FakeKubeApi(api=api)
        for i, (reason, type_, note, kind) in enumerate(rows):
            for age in (timedelta(seconds=5), timedelta(minutes=14), timedelta(minutes=20)):
                name = "node-3" if kind == "Node" else f"web-7d9f8c6b5-x2x{i:02d}"
                objects.append(
                    shaper._shape(
                        name=f"{name}.{i:08x}",
                        namespace="shop",
                        reason=reason,
                        note=note,
                        type_=type_,
                        kind=kind,
                        object_name=name,
                        when=k8s_events.NOW - age,
                    )
                )
    samples = REPO / "config" / "samples" / "kubernetes" / "events.jsonl"
    objects += [json.loads(line) for line in samples.read_text().splitlines() if line]
    broken = event()
    broken["deprecatedLastTimestamp"] = "yesterday"
    repeated = dict(event(age=timedelta(minutes=40)), deprecatedCount=7)
    repeated["deprecatedLastTimestamp"] = "2026-01-05T10:29:57Z"
    series = event(age=timedelta(hours=1))
    series["series"] = {"count": 4, "lastObservedTime": "2026-01-05T10:29:59.000001Z"}
    objects += [broken, repeated, series, k8s_events.core_event(), k8s_events.new_event()]
    return objects


STORM = storm_objects()


def test_the_corpus_reaches_every_verdict():
    """The comparison below is not vacuous: the corpus is published, filtered for each reason
    the source and the mapping give, stale and invalid."""
    reasons = {
        assert_same_verdict(filter_of(mapping), obj, k8s_events.NOW - timedelta(minutes=15))[0]
        for mapping in MAPPINGS
        for obj in STORM
    }
    assert reasons >= {
        "",
        "normal",
        "unmapped-reason",
        "unsupported-kind",
        "unmapped",
        "disabled",
        "stale",
        "invalid",
    }


@pytest.mark.parametrize("forward_all", [False, True])
@pytest.mark.parametrize("minutes", [15, 0.5, 600])
@pytest.mark.parametrize("window", [timedelta(minutes=15), timedelta(hours=3)])
@pytest.mark.parametrize("mapping", MAPPINGS, ids=["project", "varied"])
def test_the_corpus_gets_the_verdicts_of_the_built_events(
    forward_all: bool, minutes: float, window: timedelta, mapping: MappingTable
):
    event_filter = filter_of(mapping, minutes=minutes, forward_all=forward_all)
    for obj in STORM:
        for kind in ("ADDED", "MODIFIED", "DELETED"):
            assert_same_verdict(event_filter, obj, k8s_events.NOW - window, kind)


def test_the_forwarder_tests_filter_gives_the_same_verdicts():
    """``make_filter``, as the forwarder's own tests build it (its clock at their NOW)."""
    for forward_all in (False, True):
        event_filter = make_filter(forward_all=forward_all)
        for obj in STORM:
            assert_same_verdict(event_filter, obj, NOW - timedelta(minutes=15))


@st.composite
def watched_events(draw: st.DrawFn) -> dict[str, Any]:
    """A watched Event object of either shape, as the source's reference test varies them, its
    timestamps now and then in the fields the filter reads for the last occurrence broken."""
    raw: dict[str, Any] = draw(raw_events().filter(lambda raw: isinstance(raw, dict)))
    if draw(st.integers(0, 3)) == 0:
        value = draw(st.none() | st.sampled_from([*TIMES, *BAD_TIMES]) | WRONG)
        if draw(st.booleans()):
            raw["series"] = {"count": 2, "lastObservedTime": value}
        elif isinstance(raw.get("metadata"), dict):
            raw["metadata"]["creationTimestamp"] = value
    # A lone surrogate cannot be published as UTF-8 (the API server's JSON never holds one).
    assume(_encodable(raw))
    return raw


def _encodable(raw: dict[str, Any]) -> bool:
    try:
        json.dumps(raw, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    obj=watched_events(),
    mapping=st.sampled_from(MAPPINGS),
    minutes=st.sampled_from([15, 0.5, 600]),
    window=st.sampled_from([timedelta(minutes=15), timedelta(minutes=2), timedelta(hours=3)]),
    forward_all=st.booleans(),
    kind=st.sampled_from(["ADDED", "MODIFIED"]),
)
def test_generated_events_get_the_verdicts_of_the_built_events(
    obj: dict[str, Any],
    mapping: MappingTable,
    minutes: float,
    window: timedelta,
    forward_all: bool,
    kind: str,
) -> None:
    event_filter = filter_of(mapping, minutes=minutes, forward_all=forward_all)
    assert_same_verdict(event_filter, obj, k8s_events.NOW - window, kind)
    # Again: the second time every timestamp is in the source's cache.
    assert_same_verdict(event_filter, obj, k8s_events.NOW - window, kind)


@settings(max_examples=400, deadline=None)
@given(obj=watched_events())
def test_the_last_occurrence_reads_as_parse_time_does(obj: dict[str, Any]) -> None:
    """Value, time zone, and a broken field alike."""
    try:
        expected: Any = reference_last_occurrence(copy.deepcopy(obj))
    except InvalidEventError:
        expected = InvalidEventError
    for _ in range(2):  # uncached, then cached
        try:
            got: Any = last_occurrence(copy.deepcopy(obj))
        except InvalidEventError:
            got = InvalidEventError
        assert (got, repr(got)) == (expected, repr(expected))


def test_event_types_of_names_what_normalize_builds():
    """The same types, the same drop's reason, the same error (text and field)."""
    source: KubernetesSource = k8s_events.source(MAPPINGS[1])

    def built(raw: Any) -> tuple[tuple[str, ...], str]:
        try:
            return tuple(e.type for e in source.normalize(raw, {})), ""
        except Dropped as dropped:
            return (), dropped.reason

    outcomes = [outcome(built, obj) for obj in STORM]
    assert [outcome(source.event_types_of, obj) for obj in STORM] == outcomes
    assert {o[1] for o in outcomes} >= {"", "normal", "unsupported-kind", "stale"}


def outcome(
    judge: Callable[[Any], tuple[tuple[str, ...], str]], obj: dict[str, Any]
) -> tuple[Any, ...]:
    """The types and the drop's reason, or the error's text and field."""
    try:
        return judge(copy.deepcopy(obj))
    except InvalidEventError as exc:
        return ("invalid", str(exc), exc.field)


def test_equal_instants_keep_the_first_fields_time_zone():
    obj = event()
    obj["eventTime"] = "2026-01-05T12:30:00+02:00"
    obj["deprecatedLastTimestamp"] = "2026-01-05T10:30:00Z"
    obj["metadata"]["creationTimestamp"] = "2026-01-05T10:30:00+00:00"

    last = last_occurrence(obj)

    assert last == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert last is not None
    assert last.utcoffset() == timedelta(hours=2)


def test_a_storm_parses_each_distinct_timestamp_once(monkeypatch: pytest.MonkeyPatch):
    """The filter reads the last occurrence, then the source's judgement reads the timestamps
    again: through one cache, so 200 Events sharing three timestamps parse three strings."""
    parsed: list[object] = []

    def counting(value: object, field: str) -> datetime | None:
        parsed.append(value)
        return parse_time(value, field)

    for module in ("khook_core.sources.kubernetes", "khook_core.forwarder.filtering"):
        monkeypatch.setattr(f"{module}.parse_time", counting, raising=False)
    when = k8s_events.NOW - timedelta(seconds=7, microseconds=4321)  # in no cache yet
    shaper = FakeKubeApi(api=EVENTS_API)
    storm = [
        shaper._shape(
            name=f"web-{i}.{i:08x}",
            namespace="shop",
            reason="BackOff",
            note="Back-off restarting failed container app",
            type_="Warning",
            kind="Pod",
            object_name=f"web-{i}",
            when=when,
        )
        for i in range(200)
    ]
    distinct = {storm[0]["eventTime"], storm[0]["deprecatedLastTimestamp"]}
    distinct.add(storm[0]["metadata"]["creationTimestamp"])
    event_filter = filter_of(MAPPINGS[0])

    published = [
        event_filter.decide("ADDED", obj, newer_than=when - timedelta(minutes=1)).message
        for obj in storm
    ]

    assert all(message is not None for message in published)
    assert sorted(map(str, parsed)) == sorted(distinct)
