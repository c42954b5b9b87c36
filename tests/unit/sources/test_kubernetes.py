from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khook_core.errors import InvalidEventError
from khook_core.mapping import MappingEntry, MappingTable
from khook_core.sources.base import Dropped
from khook_core.sources.kubernetes import (
    classify_reason,
    owner_of,
)
from tests.support.k8s_events import core_event, new_event, source

# khook's reason table, row by row: (reason, message, type) → result.
REASON_TABLE = [
    ("row 1 oomkilling", "OOMKilling", "Memory cgroup out of memory", "Warning", "oom-kill"),
    ("row 1 oomkilled", "OOMKilled", "", "Warning", "oom-kill"),
    ("row 2 killing + oom", "Killing", "Container app OOM killed", "Warning", "oom-kill"),
    ("row 2 killed + out of memory", "Killed", "out of memory", "Warning", "oom-kill"),
    ("row 2b killing otherwise", "Killing", "Stopping container app", "Warning", "pod-restart"),
    ("row 3 backoff", "BackOff", "Back-off restarting failed container", "Warning", "pod-restart"),
    ("row 3 case-insensitive", "BACKOFF", "whatever", "Warning", "pod-restart"),
    (
        "row 4 failed + container",
        "Failed",
        "Error: container create failed",
        "Warning",
        "pod-restart",
    ),
    ("row 4 failed without container", "Failed", "Failed to pull image", "Warning", None),
    (
        "row 5 failedscheduling",
        "FailedScheduling",
        "0/3 nodes are available",
        "Warning",
        "pod-pending",
    ),
    ("row 6 reason pending", "Pending", "", "Warning", "pod-pending"),
    (
        "row 6 warning mentioning pending",
        "Waiting",
        "volume still pending",
        "Warning",
        "pod-pending",
    ),
    ("row 7 liveness", "Unhealthy", "Liveness probe failed: HTTP 500", "Warning", "probe-failed"),
    ("row 7 readiness", "Unhealthy", "Readiness probe failed", "Warning", "probe-failed"),
    ("row 7 startup", "Unhealthy", "Startup probe failed", "Warning", "probe-failed"),
    ("row 7 unhealthy otherwise stops", "Unhealthy", "something else", "Warning", None),
    ("row 8 probe reason warning", "ProbeWarning", "odd probe", "Warning", "probe-failed"),
    ("row 8 probe reason not warning", "ProbeWarning", "odd probe", "Normal", None),
    ("row 9 started container", "Started", "Started container app", "Normal", None),
    ("row 9 created normal", "Created", "Created container app", "Normal", None),
    ("anything else", "Scheduled", "Successfully assigned", "Normal", None),
]


@pytest.mark.parametrize(
    ("reason", "message", "type_", "expected"),
    [row[1:] for row in REASON_TABLE],
    ids=[row[0] for row in REASON_TABLE],
)
def test_reason_table_row_by_row(reason: str, message: str, type_: str, expected: str | None):
    assert classify_reason(reason, message, type_) == expected


def test_core_v1_event_becomes_one_event_with_resource_and_metadata():
    (event,) = source().normalize(core_event(count=7), {"khook.cluster": "prod"})
    assert event.type == "pod-restart"
    assert event.source == "kubernetes"
    assert (event.resource.kind, event.resource.namespace, event.resource.name) == (
        "Pod",
        "shop",
        "web-0",
    )
    assert event.reason == "BackOff"
    assert event.message.startswith("Back-off")
    assert event.count == 7
    assert event.timestamp == datetime(2026, 1, 5, 10, 31, 12, tzinfo=UTC)
    assert event.first_timestamp == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert event.timestamp.tzinfo is not None
    assert event.metadata["api"] == "v1"
    assert event.metadata["cluster"] == "prod"
    assert event.metadata["reportingController"] == "kubelet"


def test_events_k8s_io_shape_reads_note_and_regarding():
    (event,) = source().normalize(new_event("Unhealthy", "Liveness probe failed"), {})
    assert event.type == "probe-failed"
    assert event.message == "Liveness probe failed"
    assert event.resource.name == "web-0"
    assert event.metadata["api"] == "events.k8s.io/v1"


def test_same_raw_event_gives_same_id_and_a_new_occurrence_a_new_id():
    src = source()
    a = src.normalize(core_event(count=7), {})[0]
    b = src.normalize(json.loads(json.dumps(core_event(count=7))), {})[0]
    c = src.normalize(core_event(count=8, last="2026-01-05T10:33:00Z"), {})[0]
    assert a.id == b.id
    assert a.id != c.id


def test_old_legacy_event_with_growing_count_still_fires():
    # Created two hours ago (khook would call it stale) but last seen a minute ago.
    raw = core_event(
        count=40,
        created="2026-01-05T08:00:00Z",
        first="2026-01-05T08:00:00Z",
        last="2026-01-05T10:34:00Z",
    )
    assert source().normalize(raw, {})[0].count == 40


def test_series_last_observed_time_keeps_a_long_series_fresh():
    raw = new_event(
        event_time="2026-01-05T08:00:00.000000Z",
        created="2026-01-05T08:00:00Z",
        series={"count": 12, "lastObservedTime": "2026-01-05T10:30:00.000000Z"},
    )
    (event,) = source().normalize(raw, {})
    assert event.count == 12
    assert event.timestamp == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


def test_deprecated_last_timestamp_counts_for_freshness():
    raw = new_event(
        event_time=None, created="2026-01-05T08:00:00Z", deprecated_last="2026-01-05T10:33:00Z"
    )
    assert source().normalize(raw, {})


def test_stale_event_is_dropped_and_window_is_configurable():
    raw = core_event(
        created="2026-01-05T10:00:00Z", first="2026-01-05T10:00:00Z", last="2026-01-05T10:10:00Z"
    )  # 25 minutes before NOW
    with pytest.raises(Dropped) as info:
        source().normalize(raw, {})
    assert info.value.reason == "stale"
    assert source(minutes=30).normalize(raw, {})


def test_normal_events_are_dropped_unless_a_mapping_enables_them():
    raw = core_event("Killing", "Stopping container app", type_="Normal")
    with pytest.raises(Dropped) as info:
        source().normalize(raw, {})
    assert info.value.reason == "normal"
    table = MappingTable(
        {
            ("kubernetes", "pod-restart"): MappingEntry(
                "kubernetes", "pod-restart", include_normal=True
            )
        }
    )
    assert source(table).normalize(raw, {})[0].type == "pod-restart"


def test_node_not_ready_fires_even_when_normal():
    raw = core_event(
        "NodeNotReady",
        "Node node-3 status is now: NodeNotReady",
        type_="Normal",
        kind="Node",
        name="node-3",
        namespace="default",
    )
    (event,) = source().normalize(raw, {})
    assert event.type == "node-not-ready"
    assert event.resource.kind == "Node"


def test_other_kinds_and_unmapped_reasons_are_dropped_with_their_reason():
    with pytest.raises(Dropped, match="unsupported-kind"):
        source().normalize(core_event(kind="Deployment"), {})
    with pytest.raises(Dropped, match="unmapped-reason"):
        source().normalize(core_event("FailedMount", "MountVolume.SetUp failed"), {})


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(reason=5), "reason"),
        (lambda e: e.update(involvedObject="pod"), "involvedObject"),
        (lambda e: e.update(count="7"), "count"),
        (lambda e: e.update(lastTimestamp="yesterday"), "lastTimestamp"),
        (
            lambda e: (
                e["metadata"].update(creationTimestamp=None)
                or e.update(lastTimestamp=None, firstTimestamp=None)
            ),
            "metadata.creationTimestamp",
        ),
    ],
)
def test_malformed_fields_are_named_in_the_error(mutate: Any, field: str):
    raw = core_event()
    mutate(raw)
    with pytest.raises(InvalidEventError) as info:
        source().normalize(raw, {})
    assert info.value.field == field


def test_non_object_payload_is_invalid():
    with pytest.raises(InvalidEventError, match="expected an object"):
        source().normalize([1, 2], {})


@pytest.mark.parametrize(
    ("pod", "owner"),
    [
        ("web-7d9f8c6b5-x2x9q", "web"),
        ("node-exporter-x2x9q", "node-exporter"),
        ("db-0", "db"),
        ("plain", "plain"),
    ],
)
def test_pods_group_by_owning_workload(pod: str, owner: str):
    assert owner_of(pod) == owner


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["v1", "events.k8s.io/v1"]) | st.text(max_size=5),
        "metadata": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "creationTimestamp": st.sampled_from(["2026-01-05T10:30:00Z", "bad", ""])
                | json_values,
                "namespace": json_values,
                "uid": json_values,
            },
        ),
        "involvedObject": json_values
        | st.fixed_dictionaries(
            {},
            optional={"kind": st.sampled_from(["Pod", "Node"]) | json_values, "name": json_values},
        ),
        "regarding": json_values,
        "reason": st.sampled_from(["BackOff", "Unhealthy", "NodeNotReady"]) | json_values,
        "message": json_values,
        "note": json_values,
        "type": st.sampled_from(["Warning", "Normal"]) | json_values,
        "count": json_values,
        "series": json_values,
        "eventTime": json_values,
        "lastTimestamp": st.sampled_from(["2026-01-05T10:31:00Z", "0001-01-01T00:00:00Z"])
        | json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, event_like))
def test_any_json_gives_events_or_a_clean_error(raw: Any):
    try:
        events = source().normalize(raw, {})
    except (InvalidEventError, Dropped):
        return
    assert all(e.timestamp.tzinfo is not None for e in events)
