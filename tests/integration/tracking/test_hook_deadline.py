"""A hook's own ``task:`` deadline and cancel win over the settings, on both wires.

functions/kubernetes and functions/sweep through the real functions-framework apps, a SQLite
state file and the a2a-sdk test agent, whose run stays ``working`` until the end of the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push
from tests.support.sweep import tick_until

CANCEL = {"1.0": "CancelTask", "0.3": "tasks/cancel"}


@pytest.mark.parametrize("wire", ["1.0", "0.3"])
def test_the_hooks_deadline_times_the_task_out_and_cancels_it(
    wire: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    function_client: Callable[[str], Any],
) -> None:
    hook = restart_hook(extensions="task: {deadline: 1s, cancel: true}")
    env = {
        "KHOOK_CONFIG_DIR": str(make_config(tmp_path, hook)),
        "KAGENT_API_URL": a2a_agent.base_url,
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KHOOK_A2A_VERSION": wire,
        "KHOOK_TRACK_DEADLINE": "1h",  # the settings' deadline and cancel: the hook's win
        "KHOOK_TRACK_CANCEL": "false",
        "KHOOK_TRACK_FIRST_CHECK": "0",
        "KHOOK_TRACK_BACKOFF": "0.05",
        "KHOOK_TRACK_MAX_BACKOFF": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    a2a_agent.hold = threading.Event()
    kubernetes, sweep = function_client("kubernetes"), function_client("sweep")
    try:
        event = FakeKubeApi().create(namespace="shop", object_name="web-0")
        assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200

        def ends() -> list[str]:
            return [f.outcome for f in get_runtime().store.firings() if f.outcome != "dispatched"]

        tick_until(sweep, lambda: bool(ends()), pause=0.05)
        assert ends() == ["task:timed-out"]
        methods = [r.json().get("method") for r in a2a_agent.rpc_requests()]
        assert CANCEL[wire] in methods
    finally:
        a2a_agent.hold.set()
        get_runtime().close()
