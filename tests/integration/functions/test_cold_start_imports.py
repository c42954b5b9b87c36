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

import pytest

from tests.support.paths import REPO

FUNCTIONS = (
    "alertmanager", "cdc", "console", "gcp", "kafka", "kubernetes", "sweep", "tasks", "webhook"
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
