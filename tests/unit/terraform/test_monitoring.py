"""The alert policies and the dashboard of terraform/monitoring.tf watch what the code exports.

Every ``khook.*`` metric and label they name is one ``khook_core.telemetry`` writes (read back
from an in-memory reader), the decision they count is a ``DecisionKind``, and the Pub/Sub topics
they watch are the ones pubsub.tf creates; the dashboard template renders to JSON covering
every exported metric.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from khook_core import telemetry
from khook_core.decisions import DecisionKind
from khook_core.settings import TelemetrySettings
from tests.support.terraform import TERRAFORM, TerraformConfig, first

ALERTS = ("dead_letters", "dispatch_failures", "circuit_open", "forwarder_silent")
KHOOK_METRIC = re.compile(
    r'metric\.type\s*=\s*\\?"(?:\$\{local\.khook_metric\}|\$\{metric\})\.([\w.]+)'
)
LABEL = re.compile(r'metric\.label\.\\?"?(\w+)')


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Each metric the code exports, with its attribute names."""
    reader = InMemoryMetricReader()
    tracing = telemetry.build(TelemetrySettings(), function="f", metric_reader=reader)
    tracing.event_in("s")
    tracing.decision("s", DecisionKind.DISPATCHED)
    tracing.claim("s", 0.01, "won")
    tracing.dispatch("s", 0.1, "ok")
    tracing.backlog("s", 3)
    tracing.reload("loaded")
    tracing.masked("s", "password", 1)
    data = reader.get_metrics_data()
    tracing.close()
    assert data is not None
    found: dict[str, set[str]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found.setdefault(metric.name, set()).update(point.attributes or {})
    return found


def filters(policy: dict[str, Any]) -> list[str]:
    found = []
    for condition in policy["conditions"]:
        for kind in ("condition_threshold", "condition_absent"):
            for block in condition.get(kind, []):
                found += [block[k] for k in ("filter", "denominator_filter") if k in block]
    return found


def metric_filter(tf: TerraformConfig, text: str) -> str:
    """A filter with ``${local.khook_metric_filter}`` written out."""
    return text.replace("${local.khook_metric_filter}", tf.locals["khook_metric_filter"])


def dashboard() -> dict[str, Any]:
    text = (TERRAFORM / "dashboard.json.tftpl").read_text()
    text = text.replace("${name_prefix}", "khook").replace(
        "${metric}", "workload.googleapis.com/khook"
    )
    parsed: dict[str, Any] = json.loads(text.replace("$${", "${"))
    return parsed


def test_the_four_alert_policies_exist(tf: TerraformConfig):
    assert set(tf.of_type("google_monitoring_alert_policy")) == set(ALERTS)
    for policy in tf.of_type("google_monitoring_alert_policy").values():
        assert policy["notification_channels"] == "${var.alert_channels}"
        assert first(policy["documentation"])["content"]


def test_alerts_name_only_metrics_and_labels_the_code_exports(
    tf: TerraformConfig, exported: dict[str, set[str]]
):
    named = set()
    for policy in tf.of_type("google_monitoring_alert_policy").values():
        for text in filters(dict(policy)):
            text = metric_filter(tf, text)
            for metric in KHOOK_METRIC.findall(text):
                named.add(metric)
                assert f"khook.{metric}" in exported, text
                for label in LABEL.findall(text):
                    assert label in exported[f"khook.{metric}"], (label, text)
    assert named == {"dispatches", "decisions"}


def test_the_circuit_alert_counts_the_circuit_open_decision(tf: TerraformConfig):
    [text] = filters(dict(tf.of_type("google_monitoring_alert_policy")["circuit_open"]))
    assert f'metric.label.decision = "{DecisionKind.FAILED_CIRCUIT_OPEN}"' in text


def test_the_failure_ratio_divides_failed_dispatches_by_all(tf: TerraformConfig):
    policy = tf.of_type("google_monitoring_alert_policy")["dispatch_failures"]
    threshold = first(first(policy["conditions"])["condition_threshold"])
    assert 'metric.label.outcome != "ok"' in threshold["filter"]
    assert threshold["denominator_filter"].endswith('.dispatches"')
    assert threshold["threshold_value"] == "${var.alert_failure_ratio}"


def test_pubsub_alerts_watch_the_topics_pubsub_tf_creates(tf: TerraformConfig):
    dead = tf.of_type("google_pubsub_topic")["dead_letter"]["name"]
    assert dead == "${var.name_prefix}-${each.key}-dead-letter"
    assert r"${var.name_prefix}-.*-dead-letter" in tf.locals["dead_letter_topics"]
    [silent] = filters(dict(tf.of_type("google_monitoring_alert_policy")["forwarder_silent"]))
    assert tf.of_type("google_pubsub_topic")["source"]["name"] == "${var.name_prefix}-${each.key}"
    assert 'resource.label.topic_id = "${var.name_prefix}-kubernetes"' in silent
    assert tf.of_type("google_monitoring_alert_policy")["forwarder_silent"]["count"] == (
        "${local.forwarder_enabled ? 1 : 0}"
    )


def test_the_dashboard_charts_every_exported_metric_and_only_those(exported: dict[str, set[str]]):
    board = dashboard()
    tiles = board["mosaicLayout"]["tiles"]
    charted = set()
    for tile in tiles:
        for data_set in tile["widget"]["xyChart"]["dataSets"]:
            query = data_set["timeSeriesQuery"]["timeSeriesFilter"]
            for metric in re.findall(
                r'workload\.googleapis\.com/khook\.([\w.]+)"', query["filter"]
            ):
                charted.add(f"khook.{metric}")
                for field in query["aggregation"].get("groupByFields", []):
                    label = re.fullmatch(r'metric\.label\."(\w+)"', field)
                    if label:
                        assert label.group(1) in exported[f"khook.{metric}"], field
    assert charted == set(exported)
    # Tiles side by side in two columns of a 48-column grid, none overlapping.
    cells = {(t["xPos"], t["yPos"]) for t in tiles}
    assert len(cells) == len(tiles)
    assert all(t["xPos"] + t["width"] <= board["mosaicLayout"]["columns"] for t in tiles)


def test_the_exporters_may_write_when_telemetry_is_gcp(tf: TerraformConfig):
    assert tf.locals["environment"]["KHOOK_TELEMETRY"] == "${var.telemetry}"
    assert tf.default("telemetry") == "off"
    assert set(tf.locals["exporter_roles"]) == {
        "roles/cloudtrace.agent",
        "roles/monitoring.metricWriter",
    }
    grant = tf.of_type("google_project_iam_member")["telemetry_exporter"]
    assert grant["for_each"] == "${local.exporter_grants}"
    grants = tf.locals["exporter_grants"]
    assert "local.telemetry_enabled" in grants
    assert "google_service_account.runtime[pair[0]].email" in grants
    assert "google_service_account.forwarder[0].email" in grants
