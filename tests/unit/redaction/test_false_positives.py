"""Nothing an investigation needs is masked: the bundled samples, the test fixtures' events and
Kubernetes values that look random pass redaction untouched (the very same object)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from khook_core.cli.replay import read_payloads
from khook_core.event import Event, Resource
from khook_core.redaction.redactor import Redactor
from khook_core.runtime import Clock, load_config
from khook_core.sources.base import Dropped, EventSource
from tests.support import k8s_events
from tests.support.paths import REPO
from tests.support.sources import SAMPLES
from tests.support.storm import storm_events

KEY = b"k" * 32
NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
PLUGINS = """\
plugins:
  - name: kubernetes
    config: {freshnessMinutes: 15}
  - name: kafka
    config: {requireMetadata: false}
"""
SAMPLE_FILES = sorted(SAMPLES.glob("*/*"))

RANDOM_LOOKING = {
    "image": "ghcr.io/octo-org/shop/api@sha256:"
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "imageID": "docker.io/library/nginx@sha256:"
    "4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac",
    "pod-template-hash": "7d9f8c6b5",
    "controller-revision-hash": "web-5c8d7f9b6d",
    "uid": "3f2b9a7e-1c4d-4e5f-9a8b-7c6d5e4f3a2b",
    "resourceVersion": "482139127",
    "commit": "e83c5163316f89bfbde7d9ab23ca2e25604af290",
    "short-sha": "e83c516",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "timestamp": "2026-01-05T10:31:12.123456Z",
    "generateName": "web-7d9f8c6b5-",
    "fingerprint": "c6f1a5e1a9b4d2e3",
    "containerID": "containerd://a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "secretName": "db-credentials",
    "tokenExpirationSeconds": "3600",
    "serviceAccountName": "token-refresher",
    "sessionAffinity": "ClientIP",
    "api-key-secret-ref": "shop/api-keys",
    "message-id": "MTcwNDQ1MDI3MzEyMzQ1Njc4OQ",
}
RANDOM_MESSAGES = [
    'Successfully pulled image "{image}" in 1.2s',
    "Created pod: web-7d9f8c6b5-x2x9q (uid {uid})",
    'MountVolume.SetUp failed for volume "token-vol" : secret "db-credentials" not found',
    'Error: secret "api-token" not found',
    "Bearer token expired for service account shop/token-refresher",
    "Back-off pulling image {image}",
    "deploy of {commit} (trace {trace_id}) failed at 2026-01-05T10:31:12Z",
    "password reset email queued for user 42",
    "token bucket exhausted: retry in 30s",
    "http://api.shop.svc:8080/healthz returned 503",
    "https://grafana.example/d/abc123/checkout?orgId=1&from=now-1h",
]


def _normalized(source: EventSource, payload: Any) -> list[Event]:
    try:
        return source.normalize(payload, {})
    except Dropped:  # a snapshot read, a success, a stale or Normal event: no event to check
        return []


def untouched(redactor: Redactor, event: Event) -> None:
    redacted, found = redactor.explain(event)
    assert found == []
    assert redacted is event


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(REPO / "config", root)
    (root / "plugins.yaml").write_text(PLUGINS)
    return root


@pytest.mark.parametrize(
    "path", SAMPLE_FILES, ids=[f"{p.parent.name}/{p.name}" for p in SAMPLE_FILES]
)
def test_no_bundled_sample_is_masked(path: Path, config: Path) -> None:
    loaded = load_config(config, clock=Clock(NOW))
    source = loaded.sources.get(path.parent.name)
    with path.open(encoding="utf-8") as handle:
        payloads = read_payloads(handle)
    events = [event for payload in payloads for event in _normalized(source, payload)]
    redactor = Redactor(KEY, loaded.plugins.redact_rules())
    for event in events:
        untouched(redactor, event)


def test_no_fixture_kubernetes_event_is_masked() -> None:
    source = k8s_events.source()
    raws = [
        k8s_events.core_event(),
        k8s_events.new_event(),
        *(raw for _, raw in storm_events(200, pods=20)),
    ]
    redactor = Redactor(KEY)
    events = [event for raw in raws for event in _normalized(source, raw)]
    assert len(events) > 100
    for event in events:
        untouched(redactor, event)


def test_kubernetes_values_that_look_random_are_not_masked() -> None:
    redactor = Redactor(KEY)
    for template in RANDOM_MESSAGES:
        message = template.format(
            **{k.replace("-", "_"): v for k, v in RANDOM_LOOKING.items()} | RANDOM_LOOKING
        )
        event = Event(
            id="kubernetes:1",
            source="kubernetes",
            type="pod-restart",
            message=message,
            timestamp=NOW,
            tags=dict(RANDOM_LOOKING),
            metadata={
                "labels": dict(RANDOM_LOOKING),
                "annotations": dict(RANDOM_LOOKING),
                "spec": json.loads(json.dumps(RANDOM_LOOKING)),
            },
            resource=Resource(
                kind="Pod", name="web-7d9f8c6b5-x2x9q", namespace="shop", uid=RANDOM_LOOKING["uid"]
            ),
        )
        untouched(redactor, event)
