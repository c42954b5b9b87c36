"""The pre-filter publishes exactly what the functions could turn into a hook firing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from khook_core.errors import ConfigError
from khook_core.forwarder.app import load_source
from khook_core.forwarder.filtering import last_occurrence
from tests.support.forwarder import NOW, REPO, event, make_filter
from tests.support.kube_api import CORE_API, EVENTS_API

RECENT = NOW - timedelta(minutes=15)


def test_a_fresh_backoff_is_forwarded_with_the_contract_attributes():
    obj = event(reason="BackOff", namespace="shop")

    verdict = make_filter().decide("ADDED", obj, newer_than=RECENT)

    assert verdict.message is not None
    assert json.loads(verdict.message.data) == obj
    assert verdict.message.attributes == {
        "khook.source": "kubernetes",
        "khook.cluster": "prod-eu",
        "khook.api": EVENTS_API,
        "khook.namespace": "shop",
        "khook.reason": "BackOff",
        "khook.type": "Warning",
    }


def test_core_v1_events_carry_the_v1_api_attribute():
    obj = event(CORE_API, reason="Unhealthy", note="Liveness probe failed: timeout")

    verdict = make_filter(api=CORE_API).decide("MODIFIED", obj, newer_than=RECENT)

    assert verdict.message is not None
    assert verdict.message.attributes["khook.api"] == "v1"
    assert verdict.message.attributes["khook.reason"] == "Unhealthy"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"reason": "Scheduled", "type_": "Normal"}, "normal"),
        ({"reason": "Pulled", "type_": "Warning"}, "unmapped-reason"),
        ({"reason": "ScalingReplicaSet", "kind": "Deployment"}, "unsupported-kind"),
    ],
)
def test_events_no_hook_could_fire_on_are_filtered_with_the_reason(fields, reason):
    verdict = make_filter().decide("ADDED", event(**fields), newer_than=RECENT)

    assert verdict.message is None
    assert verdict.reason == reason


def test_an_event_older_than_the_window_is_stale():
    obj = event(age=timedelta(minutes=20))

    assert make_filter().decide("ADDED", obj, newer_than=RECENT).reason == "stale"
    assert make_filter(forward_all=True).decide("ADDED", obj, newer_than=RECENT).reason == "stale"


def test_a_repeat_moves_the_last_occurrence_forward():
    server_side = event(age=timedelta(minutes=40))
    repeated = dict(
        server_side,
        deprecatedCount=7,
        deprecatedLastTimestamp=(NOW - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )

    assert make_filter().decide("MODIFIED", server_side, newer_than=RECENT).reason == "stale"
    assert make_filter().decide("MODIFIED", repeated, newer_than=RECENT).message is not None


def test_a_series_update_counts_as_a_new_occurrence():
    obj = event(age=timedelta(hours=1))
    obj["series"] = {"count": 4, "lastObservedTime": "2026-01-05T10:29:59.000001Z"}

    assert last_occurrence(obj) == NOW - timedelta(microseconds=999999)


def test_deleted_events_are_never_forwarded():
    assert make_filter(forward_all=True).decide("DELETED", event(), newer_than=RECENT).reason == (
        "deleted"
    )


def test_a_disabled_mapping_filters_its_events(tmp_path: Path):
    config = tmp_path / "config"
    config.mkdir()
    text = (REPO / "config" / "event-mappings.yaml").read_text()
    (config / "event-mappings.yaml").write_text(
        text.replace(
            'eventType: "pod-restart"\n    internalType: "PodRestart"\n    description: '
            '"Pod container restart detected"\n    severity: "warning"\n    enabled: true',
            'eventType: "pod-restart"\n    internalType: "PodRestart"\n    description: '
            '"Pod container restart detected"\n    severity: "warning"\n    enabled: false',
        )
    )
    assert "enabled: false" in (config / "event-mappings.yaml").read_text()

    verdict = make_filter(config_dir=config).decide("ADDED", event(), newer_than=RECENT)

    assert verdict.reason == "disabled"


def test_forward_all_publishes_normal_chatter_too():
    verdict = make_filter(forward_all=True).decide(
        "ADDED", event(reason="Pulled", type_="Normal"), newer_than=RECENT
    )

    assert verdict.message is not None
    assert verdict.message.attributes["khook.type"] == "Normal"


def test_an_event_with_a_broken_timestamp_is_filtered_as_invalid():
    obj = event()
    obj["deprecatedLastTimestamp"] = "yesterday"

    assert make_filter().decide("ADDED", obj, newer_than=RECENT).reason == "invalid"


def test_node_events_use_the_event_namespace():
    obj = event(
        reason="NodeNotReady",
        kind="Node",
        object_name="node-3",
        namespace="default",
        note="Node node-3 status is now: NodeNotReady",
        type_="Normal",
    )

    verdict = make_filter(forward_all=True).decide("ADDED", obj, newer_than=RECENT)

    assert verdict.message is not None
    assert verdict.message.attributes["khook.namespace"] == "default"


def test_the_pre_filter_refuses_to_start_without_a_mapping_table(tmp_path: Path):
    with pytest.raises(ConfigError, match="forward-all"):
        load_source(tmp_path, lambda: NOW, need_mapping=True)

    source, mapping = load_source(tmp_path, lambda: NOW, need_mapping=False)
    assert source.freshness == timedelta(minutes=15)
    assert not mapping.entries
