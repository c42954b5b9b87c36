"""Every bundled sample under config/samples/<source>/ replayed through ``khook replay``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from khook_core import cli
from tests.support.sources import SAMPLES

# Replay passes no transport attributes, so the kafka records carry no sink metadata.
PLUGINS = """\
plugins:
  - name: kafka
    config: {requireMetadata: false}
"""
EXPECTED: dict[tuple[str, str], list[str]] = {
    ("alertmanager", "kube-pod-crash-looping-firing.json"): ["dispatched", "dispatched"],
    ("alertmanager", "kube-pod-crash-looping-resolved.json"): ["resolved", "resolved"],
    ("alertmanager", "disk-full.json"): ["dispatched"],
    ("alertmanager", "grafana-high-cpu.json"): ["dispatched"],
    ("webhook", "generic-deployment-failed.json"): ["dispatched"],
    ("webhook", "generic-security-alert.json"): ["dispatched"],
    ("webhook", "github-workflow-run-failure.json"): ["dispatched"],
    ("webhook", "github-deployment-status-failure.json"): ["dispatched"],
    ("webhook", "cloudevent-deployment-failed.json"): ["dispatched"],
    # No hook of the test configuration takes these types: normalised, mapped, then unmatched.
    ("webhook", "grafana-contact-point-firing.json"): ["no-hook"],
    ("webhook", "pagerduty-incident-triggered.json"): ["no-hook"],
    ("gcp", "monitoring-incident-k8s-container-open.json"): ["no-hook"],
    ("gcp", "monitoring-incident-k8s-container-closed.json"): ["no-hook"],
    ("gcp", "cloud-build-failure.json"): ["no-hook"],
    ("gcp", "cloud-build-success.json"): ["dropped:build-success"],
    ("kafka", "consumer-lag.json"): ["dispatched"],
    ("kafka", "burrow-consumer-status.json"): ["dispatched"],
    ("kafka", "partition-offline.json"): ["dispatched"],
    ("cdc", "debezium-update-with-schema.json"): ["dispatched"],
    ("cdc", "debezium-update-no-schema.json"): ["dispatched"],
    ("cdc", "debezium-snapshot-read.json"): ["dropped:snapshot"],
    ("cdc", "wal2json-v1.json"): ["dispatched"],
    ("cdc", "wal2json-v2.jsonl"): [
        "dropped:transaction-boundary",
        "dispatched",
        "dropped:transaction-boundary",
    ],
}


def test_every_sample_file_is_covered() -> None:
    on_disk = {
        (p.parent.name, p.name)
        for p in SAMPLES.glob("*/*")
        if p.parent.name in ("alertmanager", "webhook", "kafka", "cdc", "gcp")
    }
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize(
    ("source", "name"), sorted(EXPECTED), ids=[f"{s}/{n}" for s, n in sorted(EXPECTED)]
)
def test_sample_replays(
    source: str, name: str, source_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = source_config(plugins=PLUGINS)
    code = cli.main(
        [
            "replay",
            "--source",
            source,
            "--config",
            str(config),
            "--now",
            "2026-01-05T10:35:00Z",
            str(SAMPLES / source / name),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [line["decision"] for line in lines] == EXPECTED[(source, name)], lines
    assert f"from {source}:" in err
    for line in lines:
        assert {"input", "decision", "event", "hook", "agent", "prompt"} <= set(line)
        if line["decision"] == "dispatched":
            assert line["event"]["source"] == source
            assert line["event"]["resource"]["name"] in line["prompt"]
            assert "<<<KHOOK_EVENT_DATA" in line["prompt"]
