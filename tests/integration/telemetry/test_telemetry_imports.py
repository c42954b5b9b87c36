"""Telemetry off imports no OpenTelemetry module at all, through a cold start and an event.

``functions/kubernetes/main.py`` is imported as functions-framework imports it, in a fresh
process, and handles one Pub/Sub delivery; the modules loaded are then read from
``sys.modules``. The same probe with telemetry on shows the probe sees the SDK when it loads,
and that the request itself imported none of the SDK (it loads off the request path).
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
import json, sys, threading
sys.path.insert(0, sys.argv[1])
import functions_framework
from cloudevents.http import CloudEvent
on_request = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        main_thread = threading.current_thread() is threading.main_thread()
        if name.split(".")[0] == "opentelemetry" and main_thread:
            on_request.append(name)
        return None
attributes = {"type": "google.cloud.pubsub.topic.v1.messagePublished",
              "source": "//pubsub.googleapis.com/projects/p1/topics/khook-kubernetes"}
sys.meta_path.insert(0, Watch())
import main
main.handle(CloudEvent(attributes, json.loads(sys.argv[2])))
sys.meta_path.pop(0)
from khook_core.runtime import get_runtime
get_runtime().telemetry.close()  # exports what was recorded: the SDK loads if it has not
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print("MODULES", json.dumps({"request": on_request, "loaded": loaded}))
"""


def opentelemetry_modules(tmp_path: Path, mode: str) -> dict[str, list[str]]:
    """``request``: OpenTelemetry modules the cold start (``import main``, the first event)
    imported on its thread; ``loaded``: those loaded once telemetry is closed."""
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
    modules: dict[str, list[str]] = json.loads(line.removeprefix("MODULES "))
    return modules


def test_telemetry_off_imports_no_opentelemetry_module_through_an_event(tmp_path: Path):
    assert opentelemetry_modules(tmp_path, "off") == {"request": [], "loaded": []}


@pytest.mark.parametrize("mode", ["console"])
def test_telemetry_on_loads_the_sdk_the_probe_would_see(tmp_path: Path, mode: str):
    modules = opentelemetry_modules(tmp_path, mode)
    assert "opentelemetry.sdk.trace" in modules["loaded"]
    assert "opentelemetry.sdk.metrics" in modules["loaded"]


def test_telemetry_on_imports_none_of_the_sdk_on_the_cold_start(tmp_path: Path):
    # Finding the SDK (``build`` fails early when it is missing) imports its two packages.
    assert opentelemetry_modules(tmp_path, "console")["request"] == [
        "opentelemetry",
        "opentelemetry.sdk",
    ]
