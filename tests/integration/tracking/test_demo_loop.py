"""The loop as ``khook up`` shows it: the demo agent completes with a short finding, the sweep's
tracking brings it back, ``khook firings`` shows it and the stack's console prints it.

The kubernetes and sweep functions through the real functions-framework apps, a SQLite state
file, and the local stack's demo agent on both wires; the ``khook`` command as a subprocess.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from khook_local.agent import DemoAgent
from khook_local.console import summarize
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push
from tests.support.paths import REPO
from tests.support.sweep import tick_until

MAX_TICKS = 200


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[DemoAgent]:
    demo = DemoAgent(tmp_path / "agent-prompts.jsonl", out=io.StringIO(), complete_after=0.2)
    demo.start()
    yield demo
    demo.stop()


@pytest.fixture(params=["1.0", "0.3"])
def state(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    agent: DemoAgent,
    function_client: Callable[[str], Any],
) -> str:
    url = f"sqlite:{tmp_path / 'state.db'}"
    env = {
        "KHOOK_CONFIG_DIR": str(make_config(tmp_path, restart_hook())),
        "KAGENT_API_URL": agent.url,
        "KHOOK_STATE": url,
        "KHOOK_A2A_VERSION": str(request.param),
        "KHOOK_TRACK_FIRST_CHECK": "0",
        "KHOOK_TRACK_BACKOFF": "0.05",
        "KHOOK_TRACK_MAX_BACKOFF": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kubernetes, sweep = function_client("kubernetes"), function_client("sweep")
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200
    tick_until(
        sweep,
        lambda: any(f.outcome == "task:completed" for f in get_runtime().store.firings()),
        ticks=MAX_TICKS,
        pause=0.05,
    )
    get_runtime().close()
    return url


def khook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "khook_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_the_demo_agents_finding_comes_back_to_khook_firings(state: str) -> None:
    table = khook("firings", "--state", state)
    assert table.returncode == 0, table.stderr
    header, completed, dispatched = table.stdout.splitlines()
    assert header.split()[-3:] == ["TASK", "STATE", "DETAIL"]
    assert " task:completed " in completed
    assert ' completed  Demo finding: read the prompt (\'Pod "web-0" restarted' in completed
    assert " submitted" in dispatched

    rows = [
        json.loads(line)
        for line in khook("firings", "--state", state, "--json").stdout.splitlines()
    ]
    done = rows[0]
    assert done["outcome"] == "task:completed"
    assert done["task_state"] == "completed"
    assert done["finding"].startswith('Demo finding: read the prompt (\'Pod "web-0" restarted')
    assert done["finding_chars"] == str(len(done["finding"]))
    assert done["finished_at"]
    assert {"task_state", "finding", "finding_chars", "finished_at", "tokens"} <= set(rows[1])


def test_the_stack_console_prints_a_finding_line_as_a_task_ends() -> None:
    record = logging.LogRecord(
        "khook_core.tracking.tracker",
        logging.INFO,
        __file__,
        1,
        "finding %s (%s, task %s)%s",
        ("shop/web", "completed", "t-1", ": Root cause: OOM"),
        None,
    )
    line = summarize({"severity": "INFO", "logger": record.name, "message": record.getMessage()})
    assert line == "finding shop/web (completed, task t-1): Root cause: OOM"
