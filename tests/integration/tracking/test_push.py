"""Tasks followed by A2A push notifications, on both wires.

functions/kubernetes in process, functions/tasks (the receiver) served by functions-framework
in its own process, one SQLite state file, and the a2a-sdk test agent whose card advertises
push notifications and whose SDK sends them to the URL each dispatch gives it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from khook_core.runtime import get_runtime
from khook_core.state.base import Firing
from tests.support.a2a_agent import TestAgent
from tests.support.functions import FunctionServer
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push, restart_hook_env

HOOK = "shop/shop-restarts"
FINDING = "Root cause: a bad ConfigMap (key LOG_LEVEL=verbose); rolled back."
CONFIG_KEY = {"1.0": "taskPushNotificationConfig", "0.3": "pushNotificationConfig"}
GET = {"GetTask", "tasks/get"}
WAIT_ROUNDS = 500


@pytest.fixture(params=["1.0", "0.3"])
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def receiver(
    wire: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_push_agent: TestAgent,
    function_server: Callable[..., FunctionServer],
) -> Iterator[FunctionServer]:
    restart_hook_env(
        monkeypatch,
        tmp_path,
        a2a_push_agent,
        KHOOK_STATE=f"sqlite:{tmp_path / 'state.db'}",
        KHOOK_A2A_VERSION=wire,
        KHOOK_LOG_FORMAT="json",
    )
    server = function_server("tasks", signature="http")
    monkeypatch.setenv("KHOOK_TRACK_PUSH_URL", f"{server.url}/")
    a2a_push_agent.hold = threading.Event()
    yield server
    a2a_push_agent.hold.set()
    get_runtime().close()


def dispatch(function_client: Callable[[str], Any], agent: TestAgent, wire: str) -> dict[str, str]:
    """Send one event; the push configuration the agent was given."""
    kubernetes = function_client("kubernetes")
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200
    [send] = [r.json() for r in agent.rpc_requests() if r.json()["method"] != "GetTask"]
    config: dict[str, str] = send["params"]["configuration"][CONFIG_KEY[wire]]
    return config


def audit() -> list[Firing]:
    return list(reversed(get_runtime().store.firings(hook=HOOK)))


def ends() -> list[Firing]:
    return [f for f in audit() if f.outcome.startswith("task:")]


def wait_for(done: Callable[[], bool]) -> None:
    for _ in range(WAIT_ROUNDS):
        if done():
            return
        time.sleep(0.02)
    raise AssertionError(f"not done after {WAIT_ROUNDS} rounds")


def test_a_task_reported_by_push_ends_completed_without_a_single_poll(
    receiver: FunctionServer,
    a2a_push_agent: TestAgent,
    function_client: Callable[[str], Any],
    wire: str,
) -> None:
    a2a_push_agent.answer = FINDING
    config = dispatch(function_client, a2a_push_agent, wire)
    assert config["url"].startswith(f"{receiver.url}/?agent=")
    assert len(config["token"]) >= 32
    assert a2a_push_agent.hold is not None
    a2a_push_agent.hold.set()

    wait_for(lambda: bool(ends()))
    from khook_core.tracking import tracker

    tracker.tick(get_runtime())  # a sweep tick after it: the task is not due, nothing asked

    [done] = ends()
    assert (done.outcome, done.finding) == ("task:completed", FINDING)
    methods = {str(r.json().get("method")) for r in a2a_push_agent.rpc_requests()}
    assert not methods & GET
    task = get_runtime().task_store().read_task(ref=f"{a2a_push_agent.url} {done.task_id}")
    assert task is not None
    assert task.push_token_hash
    assert config["token"] not in repr(task)  # only its hash is stored


def notify(
    config: dict[str, str], body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = {"X-A2A-Notification-Token": config["token"] if token is None else token}
    return httpx.post(config["url"], json=body, headers=headers, timeout=30)


def test_duplicated_and_reordered_notifications_leave_one_transition(
    receiver: FunctionServer,
    a2a_push_agent: TestAgent,
    function_client: Callable[[str], Any],
    wire: str,
) -> None:
    config = dispatch(function_client, a2a_push_agent, wire)
    [dispatched] = audit()
    task_id = dispatched.task_id
    artifact = {
        "artifactUpdate": {
            "taskId": task_id,
            "artifact": {"artifactId": "a1", "parts": [{"text": FINDING}]},
        }
    }
    completed = {"statusUpdate": {"taskId": task_id, "status": {"state": "TASK_STATE_COMPLETED"}}}
    working = {"statusUpdate": {"taskId": task_id, "status": {"state": "TASK_STATE_WORKING"}}}
    assert notify(config, artifact).status_code == 200
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(notify(config, completed).status_code))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    late = notify(config, working)
    again = notify(config, artifact)
    assert a2a_push_agent.hold is not None
    a2a_push_agent.hold.set()  # the agent's own notifications now come too, after the end

    assert answers == [200] * 4
    assert (late.status_code, late.json()["status"]) == (200, "ignored")
    assert (again.status_code, again.json()["status"]) == (200, "ignored")
    [done] = ends()
    assert (done.task_id, done.task_state, done.finding) == (task_id, "completed", FINDING)


def test_a_notification_with_a_wrong_token_is_refused_with_401_json(
    receiver: FunctionServer,
    a2a_push_agent: TestAgent,
    function_client: Callable[[str], Any],
    wire: str,
) -> None:
    config = dispatch(function_client, a2a_push_agent, wire)
    [dispatched] = audit()
    failed = {
        "statusUpdate": {"taskId": dispatched.task_id, "status": {"state": "TASK_STATE_FAILED"}}
    }

    wrong = notify(config, failed, token="not-the-token")
    missing = httpx.post(config["url"], json=failed, timeout=30)

    for answer in (wrong, missing):
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["error"] == "unauthorized"
    assert ends() == []
