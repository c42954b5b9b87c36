"""A slow agent never gets a second run for one event.

functions/kubernetes through the real functions-framework app, a SQLite state file and the
a2a-sdk test agent, which takes the message (the run starts, the task exists) but answers only
after the dispatcher's read timeout. Pub/Sub then redelivers the message: the retry must ask the
agent, find its task and not send again, on either wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import Scripted, TestAgent
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push, restart_hook_env

READ_TIMEOUT_S = 0.5
SLOW_ANSWER_S = 2.0
"""Well past the read timeout: the answer arrives after the dispatcher has given up."""
MAX_DELIVERIES = 4


@pytest.fixture(params=["0.3", "1.0"])
def client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    function_client: Callable[[str], Any],
) -> Iterator[Any]:
    restart_hook_env(
        monkeypatch,
        tmp_path,
        a2a_agent,
        KHOOK_STATE=f"sqlite:{tmp_path / 'state.db'}",
        KAGENT_API_TIMEOUT=str(READ_TIMEOUT_S),
        KHOOK_A2A_VERSION=request.param,
    )
    yield function_client("kubernetes")
    get_runtime().close()


def deliver_until_acknowledged(client: Any, event: dict[str, Any]) -> list[int]:
    """Pub/Sub at least once: the same message again after every non-2xx answer."""
    statuses: list[int] = []
    for attempt in range(1, MAX_DELIVERIES + 1):
        statuses.append(client.post(TOPIC, json=push(event, "4711", attempt)).status_code)
        if statuses[-1] == 200:
            break
    return statuses


def outcomes() -> list[tuple[str, str]]:
    """(outcome, recovered) of the audit trail, oldest first."""
    return [
        (f.outcome, f.extra.get("recovered", ""))
        for f in reversed(get_runtime().store.firings(hook="shop/shop-restarts"))
    ]


def test_an_answer_after_the_read_timeout_starts_one_run_and_the_retry_finds_its_task(
    client: Any, a2a_agent: TestAgent
) -> None:
    a2a_agent.slow_sends.append(SLOW_ANSWER_S)
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")

    statuses = deliver_until_acknowledged(client, event)

    print(
        f"\nslow agent: deliveries {statuses}, agent runs {len(a2a_agent.runs)}, audit {outcomes()}"
    )
    assert statuses == [500, 200]
    assert len(a2a_agent.runs) == 1
    assert outcomes() == [("failed:uncertain", ""), ("dispatched", "found")]


def test_an_agent_that_cannot_be_asked_gets_the_resend_recorded_as_unverified(
    client: Any, a2a_agent: TestAgent
) -> None:
    a2a_agent.slow_sends.append(SLOW_ANSWER_S)
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")

    first = client.post(TOPIC, json=push(event, "4711", 1)).status_code
    # The retry's lookup is refused as a 0.3-only agent refuses a 1.0 method.
    a2a_agent.script.append(
        Scripted(
            200,
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "khook-ListTasks",
                    "error": {"code": -32601, "message": "Method not found"},
                }
            ),
            "application/json",
        )
    )
    again = client.post(TOPIC, json=push(event, "4711", 2)).status_code

    assert (first, again) == (500, 200)
    assert len(a2a_agent.runs) == 2  # the residual risk, counted in the audit trail
    assert outcomes() == [("failed:uncertain", ""), ("resent-unverified", "unverified")]
