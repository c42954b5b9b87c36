"""The alertmanager source, and its function's dedup behaviour end to end (dry-run, memory)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core.errors import InvalidEventError
from khook_core.event import Severity
from khook_core.runtime import get_runtime
from khook_core.sources.alertmanager import AlertmanagerSource, fingerprint_of
from khook_core.sources.base import Dropped
from tests.support.sources import TOKEN, make_source, sample
from tests.support.strategies import attributes, check_normalizer, json_values, mutations

FIRING = sample("alertmanager", "kube-pod-crash-looping-firing.json")
RESOLVED = sample("alertmanager", "kube-pod-crash-looping-resolved.json")
GRAFANA = sample("alertmanager", "grafana-high-cpu.json")
DISK_FULL = sample("alertmanager", "disk-full.json")
SAMPLES = [FIRING, RESOLVED, GRAFANA, DISK_FULL]


def alertmanager(config: dict[str, Any] | None = None) -> AlertmanagerSource:
    source: AlertmanagerSource = make_source(AlertmanagerSource, config)
    return source


def test_one_event_per_alert_with_labels_as_tags_and_annotations_as_message() -> None:
    events = alertmanager().normalize(FIRING, {"http.request_id": "req-9"})
    assert len(events) == 2
    web = events[0]
    assert web.source == "alertmanager"
    assert web.type == "kube-pod-crash-looping"
    assert web.reason == "KubePodCrashLooping"
    assert web.status == "firing"
    assert web.severity is Severity.WARNING
    assert (web.resource.kind, web.resource.name, web.resource.namespace) == (
        "Pod",
        "web-7d9f8c6b5-x2x9q",
        "shop",
    )
    assert web.tags["container"] == "app"
    assert web.tags["prometheus"] == "monitoring/k8s"
    assert web.message.startswith("Pod is crash looping.\nPod shop/web-7d9f8c6b5-x2x9q (app)")
    assert web.group_key == FIRING["groupKey"]
    assert web.occurrence == "c3a1f0e2b7d94411@2026-01-05T10:20:00+00:00"
    assert web.timestamp.isoformat() == "2026-01-05T10:20:00+00:00"
    assert web.metadata["annotations"]["runbook_url"].startswith("https://runbooks")
    assert web.metadata["fingerprint"] == "c3a1f0e2b7d94411"
    assert "endsAt" not in web.metadata  # Go's zero time means "not set"
    assert web.raw_ref == "alertmanager:req-9"
    assert events[1].resource.name == "worker-0"


def test_a_resolved_alert_keeps_the_occurrence_and_uses_endsat() -> None:
    firing = alertmanager().normalize(FIRING, {})[0]
    resolved = alertmanager().normalize(RESOLVED, {})[0]
    assert resolved.status == "resolved"
    assert resolved.occurrence == firing.occurrence
    assert resolved.id != firing.id
    assert resolved.timestamp.isoformat() == "2026-01-05T10:42:00+00:00"
    assert resolved.first_timestamp == firing.first_timestamp


def test_an_explicit_event_type_label_wins_over_the_alert_name() -> None:
    payload = copy.deepcopy(DISK_FULL)
    payload["alerts"][0]["labels"]["khook_event_type"] = "disk-full"
    payload["alerts"][0]["labels"]["alertname"] = "NodeFilesystemAlmostOutOfSpace"
    [event] = alertmanager().normalize(payload, {})
    assert event.type == "disk-full"
    assert event.severity is Severity.CRITICAL
    assert (event.resource.kind, event.resource.name) == ("Instance", "db-1.internal:9100")


def test_the_type_labels_are_configurable() -> None:
    [event] = alertmanager({"typeLabels": ["runbook", "alertname"]}).normalize(DISK_FULL, {})
    assert event.type == "disk-full"
    payload = copy.deepcopy(DISK_FULL)
    payload["alerts"][0]["labels"]["runbook"] = "StorageExhausted"
    [event] = alertmanager({"typeLabels": ["runbook", "alertname"]}).normalize(payload, {})
    assert event.type == "storage-exhausted"


def test_an_unmapped_alert_takes_the_fallback_type_when_configured() -> None:
    payload = copy.deepcopy(DISK_FULL)
    payload["alerts"][0]["labels"]["alertname"] = "SomethingNobodyMapped"
    [event] = alertmanager().normalize(payload, {})
    assert event.type == "something-nobody-mapped"
    [event] = alertmanager({"fallbackEventType": "prometheus-alert"}).normalize(payload, {})
    assert event.type == "prometheus-alert"
    [mapped] = alertmanager({"fallbackEventType": "prometheus-alert"}).normalize(DISK_FULL, {})
    assert mapped.type == "disk-full"


def test_grafana_payloads_are_accepted_with_their_extras() -> None:
    [event] = alertmanager().normalize(GRAFANA, {})
    assert event.type == "high-cpu"
    assert event.metadata["dashboardURL"].startswith("https://grafana.example.com/d/")
    assert event.metadata["values"] == {"B": 93.4, "C": 1}
    assert event.metadata["version"] == "1"


def test_a_missing_fingerprint_is_derived_from_the_labels() -> None:
    payload = copy.deepcopy(DISK_FULL)
    del payload["alerts"][0]["fingerprint"]
    [event] = alertmanager().normalize(payload, {})
    labels = payload["alerts"][0]["labels"]
    assert event.metadata["fingerprint"] == fingerprint_of(labels)
    assert fingerprint_of(dict(reversed(list(labels.items())))) == fingerprint_of(labels)


def test_an_empty_group_is_dropped() -> None:
    with pytest.raises(Dropped, match="no-alerts"):
        alertmanager().normalize({**FIRING, "alerts": []}, {})


def broken(path: str, value: Any) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(FIRING)
    node: Any = payload
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "(body)"),
        ({"version": "4"}, "alerts"),
        (broken("alerts", {"a": 1}), "alerts"),
        (broken("alerts.0", "x"), "alerts[0]"),
        (broken("alerts.0.status", "pending"), "alerts[0].status"),
        (broken("alerts.0.startsAt", ...), "alerts[0].startsAt"),
        (broken("alerts.0.startsAt", "soon"), "alerts[0].startsAt"),
        (broken("alerts.0.labels", ["a"]), "alerts[0].labels"),
        (broken("alerts.0.labels.pod", 3), "alerts[0].labels.pod"),
        (broken("alerts.0.fingerprint", 17), "alerts[0].fingerprint"),
        (broken("commonLabels.alertname", None), "commonLabels.alertname"),
        (broken("groupKey", {}), "groupKey"),
    ],
)
def test_malformed_payloads_are_422_naming_the_field(payload: Any, field: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        alertmanager().normalize(payload, {})
    assert caught.value.status == 422
    assert caught.value.field == field


def test_an_alert_without_any_type_label_names_the_label() -> None:
    payload = broken("alerts.0.labels.alertname", ...)
    del payload["commonLabels"]["alertname"]
    with pytest.raises(InvalidEventError) as caught:
        alertmanager().normalize(payload, {})
    assert caught.value.field == "alerts[0].labels.alertname"
    assert "khook_event_type, alertname" in caught.value.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=json_values | mutations(SAMPLES), attrs=attributes)
def test_any_json_gives_events_or_a_clean_error(raw: Any, attrs: dict[str, str]) -> None:
    check_normalizer(alertmanager().normalize, raw, attrs)


@settings(max_examples=50, deadline=None)
@given(name=st.text(min_size=1, max_size=40))
def test_any_alert_name_gives_a_kebab_type_or_a_clean_error(name: str) -> None:
    check_normalizer(alertmanager().normalize, broken("alerts.0.labels.alertname", name), {})


# --- through the function: repeat sends, HA duplicates, resolve and re-fire -------------------


@pytest.fixture
def post(function_env: Callable[..., Any], http_client: Callable[[str], Any]) -> Callable[..., Any]:
    function_env(KHOOK_ALERTMANAGER_TOKEN=TOKEN)
    client = http_client("alertmanager")

    def send(payload: dict[str, Any]) -> dict[str, int]:
        reply = client.post(
            "/",
            data=json.dumps(payload),
            content_type="application/json",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert reply.status_code == 200, reply.get_json()
        counts: dict[str, int] = reply.get_json()["counts"]
        return counts

    return send


def dispatched() -> list[str]:
    """The occurrences the dry-run dispatcher was asked to send, in order."""
    return [r.event.occurrence for r in get_runtime().dispatcher.requests]  # type: ignore[attr-defined]


def test_repeat_sends_and_ha_duplicates_fire_once(post: Callable[..., Any]) -> None:
    assert post(FIRING) == {"dispatched": 2}
    assert post(FIRING) == {"duplicate": 2}  # group_interval / repeat_interval re-send
    ha_peer = copy.deepcopy(FIRING)  # the other Alertmanager of an HA pair
    ha_peer["externalURL"] = "http://alertmanager-main-1:9093"
    assert post(ha_peer) == {"duplicate": 2}
    grown = copy.deepcopy(FIRING)  # the group grew: only the new alert fires
    new_alert = copy.deepcopy(FIRING["alerts"][0])
    new_alert["labels"]["pod"] = "web-7d9f8c6b5-zz9k2"
    new_alert["fingerprint"] = "0d1e2f3a4b5c6d7e"
    grown["alerts"].append(new_alert)
    assert post(grown) == {"dispatched": 1, "duplicate": 2}
    assert len(dispatched()) == 3


def test_resolve_then_refire_fires_twice(post: Callable[..., Any]) -> None:
    assert post(FIRING) == {"dispatched": 2}
    assert post(RESOLVED) == {"resolved": 2}
    assert post(RESOLVED) == {"resolved": 2}  # releasing twice is harmless
    assert post(FIRING) == {"dispatched": 2}  # same startsAt after resolve: the claim was released
    refired = copy.deepcopy(FIRING)
    for alert in refired["alerts"]:
        alert["startsAt"] = "2026-01-05T11:30:00Z"
    assert post(refired) == {"dispatched": 2}  # a new startsAt is a new occurrence anyway
    assert post(refired) == {"duplicate": 2}
    assert len(dispatched()) == 6
