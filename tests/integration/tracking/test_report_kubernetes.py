"""``report: - kubernetes`` from end to end: the functions record the finding as ``pending``
(they hold no cluster credentials) and the forwarder's finding writer, reading the same state
file, puts the ``AgentFinding`` Event on the Pod of a real kube-apiserver and records ``sent``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from khook_core.event import utcnow
from khook_core.forwarder.finding_events import OUTCOME, FindingEvents
from khook_core.runtime import get_runtime
from khook_core.state.sqlite import SqliteStateStore
from tests.integration.tracking.test_report import HOOK, run_to_the_end
from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_real import RealKube

REPORT = """\
report:
- kubernetes: {onHook: false}"""


@pytest.fixture
def functions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    env = {
        "KHOOK_CONFIG_DIR": str(make_config(tmp_path, restart_hook(extensions=REPORT))),
        "KAGENT_API_URL": a2a_agent.base_url,
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KHOOK_TRACK_FIRST_CHECK": "0",
        "KHOOK_DISPATCH_BACKOFF": "0.01",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield function_client("kubernetes"), function_client("sweep")
    get_runtime().close()


def test_the_functions_leave_the_finding_pending_and_the_forwarder_writes_it_on_the_pod(
    functions: tuple[Any, Any], a2a_agent: TestAgent, real_kube: RealKube, tmp_path: Path
) -> None:
    a2a_agent.answer = "web-0 restarts: OOMKilled at 64Mi <@U1> [x](https://evil.example)"
    end = run_to_the_end(functions)
    assert end.extra["report.0.kubernetes"] == "pending: object"

    audit = SqliteStateStore(str(tmp_path / "state.db"))
    with real_kube.api_client() as api:
        core = client.CoreV1Api(api)
        try:
            core.create_namespace({"metadata": {"name": "shop"}})  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:  # the server is shared: another test may have made it
                raise
        writer = FindingEvents(core, audit.record, clock=utcnow)
        for firing in reversed(audit.firings(hook=HOOK)):
            writer.add(firing)
        writer.flush({})
        reply: Any = core.list_namespaced_event(
            "shop",
            field_selector="involvedObject.kind=Pod,involvedObject.name=web-0,reason=AgentFinding",
            _preload_content=False,
        )
        mine = [
            e for e in json.loads(reply.data)["items"] if f"task {end.task_id} " in e["message"]
        ]
    [status] = [f for f in audit.firings(hook=HOOK) if f.outcome == OUTCOME]
    audit.close()

    [event] = mine
    assert event["type"] == "Normal"
    assert event["message"].endswith(f"ended completed: {a2a_agent.answer}")
    assert status.extra == {"report.0.kubernetes": "sent"}
    assert status.task_id == end.task_id
