"""A person approves what the agent wants to do: kagent's HITL v1 exchange end to end.

functions/kubernetes and functions/sweep through the real functions-framework apps, one SQLite
state file, the a2a-sdk test agent playing kagent's human-in-the-loop extension (it pauses its
task ``input-required`` with two pending tool calls, takes the next message on the task as the
decision, validates it as kagent does and completes), and ``khook approvals`` / ``khook
approve`` run as the CLI runs, on the same state file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.approvals.deciding import Decision, decide
from khook_core.approvals.hitl import DecisionError
from khook_core.cli.approvals import Services
from khook_core.cli.main import main
from khook_core.runtime import get_runtime
from khook_core.state.base import ApprovalRecord
from tests.support.a2a_agent import HITL, TestAgent
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push, restart_hook_env
from tests.support.sweep import tick_until

from ..tracking.test_polling import audit

TOOLS = {
    "type": "tool_approval_request",
    "hint": "Restarting web-0 and scaling web need approval",
    "tools": [
        {
            "id": "conf-1",
            "call_id": "call-1",
            "name": "restart_pod",
            "args": {"namespace": "shop", "name": "web-0"},
        },
        {
            "id": "conf-2",
            "call_id": "call-2",
            "name": "scale_deployment",
            "args": {"namespace": "shop", "name": "web", "replicas": 3},
        },
    ],
}


@pytest.fixture(params=["1.0", "0.3"])
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:{tmp_path / 'state.db'}"


@pytest.fixture
def functions(
    wire: str,
    state: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    restart_hook_env(
        monkeypatch,
        tmp_path,
        a2a_agent,
        KHOOK_STATE=state,
        KHOOK_A2A_VERSION=wire,
        KHOOK_TRACK_FIRST_CHECK="0",
        KHOOK_TRACK_BACKOFF="0.01",
        KHOOK_TRACK_MAX_BACKOFF="0.02",
    )
    a2a_agent.hitl = TOOLS
    yield function_client("kubernetes"), function_client("sweep")
    get_runtime().close()


def paused(kubernetes: Any, sweep: Any) -> ApprovalRecord:
    """Dispatch one event and tick until its task's pause opened an approval."""
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200
    store = get_runtime().approval_store()
    tick_until(sweep, lambda: bool(store.approvals(open_only=True, limit=5)))
    [approval] = store.approvals(open_only=False, limit=5)
    return approval


def decisions_sent(agent: TestAgent) -> list[dict[str, Any]]:
    """The decision messages that reached the agent (JSON-RPC sends carrying the extension)."""
    sent = []
    for request in agent.rpc_requests():
        message = request.json().get("params", {}).get("message", {})
        if HITL in (message.get("metadata") or {}):
            sent.append({"headers": request.headers, "message": message})
    return sent


def test_two_pending_calls_listed_approved_and_the_same_task_completes(
    functions: tuple[Any, Any],
    a2a_agent: TestAgent,
    state: str,
    capsys: pytest.CaptureFixture[str],
    wire: str,
) -> None:
    kubernetes, sweep = functions
    approval = paused(kubernetes, sweep)
    [dispatched] = [f for f in audit() if f.outcome == "dispatched"]
    assert (approval.kind, approval.task_id) == ("tool_approval", dispatched.task_id)
    assert a2a_agent.rpc_requests()[0].headers["a2a-extensions"] == HITL  # opted in at start

    capsys.readouterr()
    assert main(["approvals", "--open", "--json", "--state", state]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["id"] == approval.id
    assert [t["id"] for t in listed["request"]["tools"]] == ["conf-1", "conf-2"]
    assert main(["approvals", "--state", state]) == 0
    text = capsys.readouterr().out
    assert "call conf-1: restart_pod" in text
    assert "call conf-2: scale_deployment" in text

    assert main(["approve", approval.id, "--by", "ana", "--state", state]) == 0
    print(capsys.readouterr().out)
    tick_until(sweep, lambda: any(f.outcome == "task:completed" for f in audit()))

    [sent] = decisions_sent(a2a_agent)
    assert sent["headers"]["a2a-extensions"] == HITL
    assert sent["headers"]["a2a-version"] == wire
    message = sent["message"]
    assert (message["taskId"], message["contextId"]) == (approval.task_id, approval.context_id)
    assert message["extensions"] == [HITL]
    assert a2a_agent.decisions == [
        {
            "type": "tool_approval_response",
            "approvals": [{"id": "conf-1", "approved": True}, {"id": "conf-2", "approved": True}],
        }
    ]
    outcomes = [f.outcome for f in audit()]
    assert outcomes == [
        "dispatched",
        "task:input-required",
        "approval:open",
        "approval:approved",
        "task:completed",
    ]
    decided = next(f for f in audit() if f.outcome == "approval:approved")
    assert (decided.extra["decided_by"], decided.extra["decision_sent"]) == ("ana", "sent")
    assert decided.task_id == approval.task_id
    done = audit()[-1]
    assert done.task_id == approval.task_id
    assert "conf-1=approved; conf-2=approved" in done.finding
    stored = get_runtime().approval_store().get_approval(id=approval.id)
    assert stored is not None
    assert (stored.state, stored.decided_by, stored.sent) == ("approved", "ana", "sent")
    assert stored.decided_at is not None


def test_a_partial_decision_is_refused_before_anything_is_sent(
    functions: tuple[Any, Any],
    a2a_agent: TestAgent,
    state: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubernetes, sweep = functions
    approval = paused(kubernetes, sweep)

    assert main(["approve", approval.id, "--call", "conf-1=approve", "--state", state]) == 1
    assert "unanswered: conf-2" in capsys.readouterr().err
    assert main(["approve", approval.id, "--call", "conf-9=reject", "--state", state]) == 1
    assert "not pending in this approval: conf-9" in capsys.readouterr().err

    assert decisions_sent(a2a_agent) == []
    stored = get_runtime().approval_store().get_approval(id=approval.id)
    assert stored is not None
    assert stored.is_open

    assert (
        main(
            [
                "approve",
                approval.id,
                "--call",
                "conf-1=approve",
                "--call",
                "conf-2=reject",
                "--reason",
                "keep 2 replicas",
                "--by",
                "ana",
                "--state",
                state,
            ]
        )
        == 0
    )
    assert a2a_agent.decisions[0]["approvals"] == [
        {"id": "conf-1", "approved": True},
        {"id": "conf-2", "approved": False, "rejection_reason": "keep 2 replicas"},
    ]


def test_of_two_concurrent_approvers_one_decision_is_sent(
    functions: tuple[Any, Any], a2a_agent: TestAgent, state: str
) -> None:
    kubernetes, sweep = functions
    approval = paused(kubernetes, sweep)
    settings = get_runtime().settings
    people = [Services(settings, state) for _ in range(2)]
    for services in people:  # both read the open approval before either writes
        assert services.approval_store().get_approval(id=approval.id) is not None
    barrier = threading.Barrier(2)
    results: list[str] = []

    def approve(n: int) -> None:
        barrier.wait(30)
        try:
            done = decide(
                people[n],
                approval.id,
                Decision(by=f"person-{n}", approve=n == 0),
                get_runtime().clock(),
            )
            results.append(f"decided {done.state}")
        except DecisionError as exc:
            results.append(f"refused: {exc}")

    threads = [threading.Thread(target=approve, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for services in people:
        services.close()

    print(results)
    assert sorted(r.split(":")[0].split(" ")[0] for r in results) == ["decided", "refused"]
    assert "already" in next(r for r in results if r.startswith("refused"))
    assert len(decisions_sent(a2a_agent)) == 1
    assert len(a2a_agent.decisions) == 1


def test_an_approval_not_decided_by_its_deadline_is_rejected_with_that_reason(
    functions: tuple[Any, Any], a2a_agent: TestAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubernetes, sweep = functions
    settings = get_runtime().settings
    monkeypatch.setitem(settings._environ, "KHOOK_APPROVAL_DEADLINE", "0.2")
    settings._groups.clear()
    approval = paused(kubernetes, sweep)

    tick_until(sweep, lambda: any(f.outcome == "task:completed" for f in audit()))

    reason = "not decided within its deadline (0.2s)"
    assert a2a_agent.decisions == [
        {
            "type": "tool_approval_response",
            "approvals": [
                {"id": "conf-1", "approved": False, "rejection_reason": reason},
                {"id": "conf-2", "approved": False, "rejection_reason": reason},
            ],
        }
    ]
    stored = get_runtime().approval_store().get_approval(id=approval.id)
    assert stored is not None
    assert (stored.state, stored.decided_by, stored.reason, stored.sent) == (
        "rejected",
        "khook (deadline)",
        reason,
        "sent",
    )
    rejected = next(f for f in audit() if f.outcome == "approval:rejected")
    assert rejected.extra["reason"] == reason


def test_a_plain_pause_is_listed_never_answered(
    functions: tuple[Any, Any],
    a2a_agent: TestAgent,
    state: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubernetes, sweep = functions
    a2a_agent.hitl_extension = False  # an agent that pauses with a text alone
    settings = get_runtime().settings
    monkeypatch.setitem(settings._environ, "KHOOK_APPROVAL_DEADLINE", "0.2")
    settings._groups.clear()
    approval = paused(kubernetes, sweep)
    assert (approval.kind, approval.text) == ("plain", TOOLS["hint"])

    assert main(["approve", approval.id, "--state", state]) == 1
    assert "answer the agent directly" in capsys.readouterr().err
    store = get_runtime().approval_store()
    tick_until(sweep, lambda: not store.approvals(open_only=True, limit=5))

    stored = store.get_approval(id=approval.id)
    assert stored is not None
    assert (stored.state, stored.sent) == ("expired", "")
    assert decisions_sent(a2a_agent) == []
    assert a2a_agent.decisions == []
