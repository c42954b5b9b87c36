"""A function's cold start imports its glue and nothing of what other processes need.

Each ``functions/<name>/main.py`` is imported the way functions-framework does it, in a fresh
process, and the modules it added are checked: the settings tree, the shared ``transport.start``
and the function's own transport, but no dispatcher client, state backend, forwarder, local
stack, CLI or settings library (those are imported on the first event, or never).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.a2a_agent import TestAgent
from tests.support.configdir import restart_hook
from tests.support.kube_api import FakeKubeApi
from tests.support.paths import REPO

FUNCTIONS = (
    "alertmanager",
    "cdc",
    "console",
    "gcp",
    "kafka",
    "kubernetes",
    "sweep",
    "tasks",
    "webhook",
)
NOT_AT_COLD_START = (
    "pydantic_settings",
    "httpx",
    "a2a",
    "grpc",
    "kubernetes",
    "google.cloud",
    "khook_core.dispatch.routing",
    "khook_core.dispatch.a2a",
    "khook_core.dispatch.webhook",
    "khook_core.state.sqlite",
    "khook_core.state.firestore",
    "khook_core.forwarder",
    "khook_local",
    "khook_core.cli",
    "khook_core.reporting",
)
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import functions_framework
before = set(sys.modules)
import main
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_imports_only_what_its_cold_start_needs(name: str):
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "KHOOK_STATE": "memory",
        "KHOOK_CONFIG_DIR": str(REPO / "config"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "functions" / name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    added = json.loads(done.stdout.splitlines()[-1])
    assert "khook_core.settings" in added
    unwanted = [m for m in added if m.startswith(NOT_AT_COLD_START)]
    assert unwanted == []


FIRST_EVENT = """
import base64, json, sys
import functions_framework
app = functions_framework.create_app("handle", sys.argv[1], "cloudevent").test_client()
body = {"message": {"data": base64.b64encode(sys.argv[2].encode()).decode(), "messageId": "1"},
        "subscription": "projects/p/subscriptions/s"}
assert app.post("/", json=body).status_code == 200
print(json.dumps(sorted(m for m in sys.modules if m.startswith("khook_core."))))
"""


def test_a_dispatched_and_tracked_first_event_of_another_source_loads_no_reporting(
    tmp_path: Path, a2a_agent: TestAgent
):
    """Findings are reported back only to the webhook source's pull requests, commits and
    PagerDuty incidents: the kubernetes function's first event starts a tracked agent task
    without importing the reporting package (nor the webhook presets it reads)."""
    config = tmp_path / "config"
    (config / "hooks").mkdir(parents=True)
    for name in ("event-mappings.yaml", "plugins.yaml"):
        (config / name).write_text((REPO / "config" / name).read_text())
    (config / "hooks" / "shop.yaml").write_text(restart_hook())
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "KHOOK_STATE": "memory",
        "KHOOK_CONFIG_DIR": str(config),
        "KAGENT_API_URL": a2a_agent.base_url,
    }
    event = json.dumps(FakeKubeApi().create(namespace="shop"))
    done = subprocess.run(
        [sys.executable, "-c", FIRST_EVENT, str(REPO / "functions/kubernetes/main.py"), event],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert len(a2a_agent.runs) == 1
    assert "khook_core.tracking.tracker" in loaded
    assert [
        m for m in loaded if m.startswith(("khook_core.reporting", "khook_core.sources.web"))
    ] == []


TICK = """
import base64, json, sys
import functions_framework
app = functions_framework.create_app("handle", sys.argv[1], "cloudevent").test_client()
body = {"message": {"data": base64.b64encode(b'{"tick": "sweep"}').decode(), "messageId": "1"},
        "subscription": "projects/p/subscriptions/khook-sweep"}
assert app.post("/", json=body).status_code == 200
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("httpx", "khook_core.dispatch")))))
"""


def test_a_first_tick_that_dispatches_nothing_builds_no_sender():
    """The dispatcher is built on its first dispatch: the sweep's tick on a store with nothing
    held back, nothing to ask about, imports neither httpx nor the sending dispatchers."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "KHOOK_STATE": "memory",
        "KHOOK_CONFIG_DIR": str(REPO / "config"),
        "KHOOK_DISPATCH": "auto",
    }
    done = subprocess.run(
        [sys.executable, "-c", TICK, str(REPO / "functions/sweep/main.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded == ["khook_core.dispatch", "khook_core.dispatch.base"]
