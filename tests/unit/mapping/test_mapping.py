from __future__ import annotations

from pathlib import Path

import pytest

from khook_core.errors import ConfigError
from khook_core.event import Severity
from khook_core.mapping import MappingTable
from tests.support.paths import COMPAT, REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "event-mappings.yaml"
    path.write_text(text)
    return path


def test_khook_compat_mapping_file_loads_unchanged():
    table = MappingTable.load(COMPAT / "khook-event-mappings.yaml")
    assert len(table.entries) == 10
    restart = table.get("kubernetes", "pod-restart")
    assert restart is not None
    assert restart.internal_type == "PodRestart"
    assert restart.severity is Severity.WARNING
    assert restart.tags == {"category": "reliability", "impact": "medium"}
    assert table.drop_reason("kafka", "consumer-lag") == "disabled"
    assert table.drop_reason("kubernetes", "pod-restart") is None
    assert table.drop_reason("kubernetes", "nope") == "unmapped"


def test_project_mapping_enables_kubernetes_types_including_node_not_ready():
    table = MappingTable.load(REPO / "config" / "event-mappings.yaml")
    for event_type in ("pod-restart", "oom-kill", "pod-pending", "probe-failed", "node-not-ready"):
        assert table.drop_reason("kubernetes", event_type) is None


def test_absent_enabled_means_enabled(tmp_path: Path):
    table = MappingTable.load(write(tmp_path, "mappings:\n- eventSource: x\n  eventType: a-b\n"))
    entry = table.get("x", "a-b")
    assert entry is not None
    assert entry.enabled


def test_duplicate_key_is_an_error_naming_file_and_line(tmp_path: Path):
    path = write(
        tmp_path,
        ("mappings:\n- eventSource: x\n  eventType: a-b\n- eventSource: x\n  eventType: a-b\n"),
    )
    with pytest.raises(ConfigError) as info:
        MappingTable.load(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:4: duplicate mapping for eventSource='x' eventType='a-b'"
    ]


def test_unknown_severity_names_the_line_of_the_field(tmp_path: Path):
    path = write(tmp_path, "mappings:\n- eventSource: x\n  eventType: a-b\n  severity: huge\n")
    with pytest.raises(ConfigError) as info:
        MappingTable.load(path)
    (problem,) = info.value.problems
    assert problem.line == 4
    assert "severity" in problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mappings:\n- eventSource: x\n", "eventType"),
        ("mappings:\n- eventSource: x\n  eventType: PodRestart\n", "eventType"),
        ("mappings:\n- eventSource: x\n  eventType: a\n  enabled: maybe\n", "enabled"),
        ("mappings:\n- eventSource: x\n  eventType: a\n  colour: red\n", "unknown field"),
        ("mappings:\n- just a string\n", "expected a mapping"),
        ("mappings: {}\n", "'mappings:' list"),
        ("mappings:\n  - [unclosed\n", "invalid YAML"),
    ],
)
def test_malformed_entries_are_errors_with_file_and_line(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        MappingTable.load(path)
    problem = info.value.problems[0]
    assert problem.file == str(path)
    assert problem.line is not None
    assert expected in problem.message


def test_a_key_written_twice_is_an_error_naming_file_line_and_key(tmp_path: Path):
    path = write(
        tmp_path,
        "mappings:\n- eventSource: x\n  eventType: a-b\n  enabled: true\n  enabled: false\n"
        "- eventSource: x\n  eventSource: y\n  eventType: c-d\n",
    )
    with pytest.raises(ConfigError) as info:
        MappingTable.load(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:5: duplicate key 'enabled' (first at line 4)",
        f"{path}:7: duplicate key 'eventSource' (first at line 6)",
    ]


def test_a_key_that_overrides_a_merged_key_is_not_a_duplicate(tmp_path: Path):
    path = write(
        tmp_path,
        "mappings:\n- &k8s {eventSource: kubernetes, eventType: a-b, severity: warning}\n"
        "- <<: *k8s\n  eventType: c-d\n  severity: error\n",
    )
    entry = MappingTable.load(path).get("kubernetes", "c-d")
    assert entry is not None
    assert entry.severity is Severity.ERROR


def test_cloudevent_rows_match_by_type_and_source_globs_in_file_order(tmp_path: Path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "mappings:\n"
        "  - {eventSource: webhook, eventType: prod-deploy-failed,\n"
        '     cloudEventType: "*.deploy.failed", cloudEventSource: "/prod/*"}\n'
        '  - {eventSource: webhook, eventType: deploy-failed, cloudEventType: "*.deploy.failed"}\n'
        "  - {eventSource: webhook, eventType: build-failed}\n"
        '  - {eventSource: kafka, eventType: other, cloudEventType: "*"}\n'
    )
    table = MappingTable.load(path)

    def event_type(ce_type: str, ce_source: str) -> str | None:
        entry = table.for_cloud_event("webhook", ce_type, ce_source)
        return entry.event_type if entry else None

    assert event_type("com.x.deploy.failed", "/prod/api") == "prod-deploy-failed"
    assert event_type("com.x.deploy.failed", "/staging/api") == "deploy-failed"
    assert event_type("build-failed", "/ci") == "build-failed"  # the type is the eventType
    assert event_type("com.x.build.started", "/ci") is None  # kafka's catch-all is not webhook's
