"""Telemetry off imports no OpenTelemetry module at all, through a cold start and an event.

``functions/kubernetes/main.py`` is imported as functions-framework imports it, in a fresh
process, and handles one Pub/Sub delivery; the modules loaded are then read from
``sys.modules``. The same probe with telemetry on shows the probe sees the SDK when it loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.configdir import make_config, restart_hook
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import push
from tests.support.paths import REPO

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import functions_framework
from cloudevents.http import CloudEvent
import main
attributes = {"type": "google.cloud.pubsub.topic.v1.messagePublished",
              "source": "//pubsub.googleapis.com/projects/p1/topics/khook-kubernetes"}
main.handle(CloudEvent(attributes, json.loads(sys.argv[2])))
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print("MODULES", json.dumps(loaded))
"""


def opentelemetry_modules(tmp_path: Path, mode: str) -> list[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "KHOOK_STATE": "memory",
        "KHOOK_DISPATCH": "dry-run",
        "KHOOK_CONFIG_DIR": str(make_config(tmp_path, restart_hook())),
        "KHOOK_TELEMETRY": mode,
    }
    delivery = push(FakeKubeApi().create(namespace="shop", object_name="web-0"), "1", 1)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "functions" / "kubernetes"), json.dumps(delivery)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "dispatched" in done.stderr  # the event went all the way through (dry-run log)
    [line] = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    modules: list[str] = json.loads(line.removeprefix("MODULES "))
    return modules


def test_telemetry_off_imports_no_opentelemetry_module_through_an_event(tmp_path: Path):
    assert opentelemetry_modules(tmp_path, "off") == []


@pytest.mark.parametrize("mode", ["console"])
def test_telemetry_on_loads_the_sdk_the_probe_would_see(tmp_path: Path, mode: str):
    modules = opentelemetry_modules(tmp_path, mode)
    assert "opentelemetry.sdk.trace" in modules
    assert "opentelemetry.sdk.metrics" in modules
