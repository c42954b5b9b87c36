"""Pub/Sub delivers at least once: the same push, twice, must start one agent run.

functions/kubernetes through the real functions-framework app, the Firestore emulator as the
state store and the a2a-sdk test agent: what a deployed function does when Pub/Sub redelivers
a message whose first delivery was in fact processed (an ack lost on the way back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from khook_core.state.firestore import FirestoreStateStore
from tests.support.a2a_agent import TestAgent
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push, restart_hook_env


@pytest.fixture
def client(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    firestore_store: FirestoreStateStore,
    a2a_agent: TestAgent,
    function_client: Callable[[str], Any],
) -> Iterator[Any]:
    restart_hook_env(
        monkeypatch,
        tmp_path,
        a2a_agent,
        KHOOK_STATE="firestore",
        GOOGLE_CLOUD_PROJECT=firestore_store.project,
    )
    yield function_client("kubernetes")
    get_runtime().close()  # its HTTP client holds a connection to the agent


def test_a_redelivered_message_starts_one_agent_run(
    client: Any, a2a_agent: TestAgent, firestore_store: FirestoreStateStore
) -> None:
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")

    first = client.post(TOPIC, json=push(event, "77", 1))
    again = client.post(TOPIC, json=push(event, "77", 2))

    assert (first.status_code, again.status_code) == (200, 200)
    assert len(a2a_agent.runs) == 1
    assert "web-0" in a2a_agent.runs[0].text
    [fired] = firestore_store.firings(hook="shop/shop-restarts")
    assert fired.outcome == "dispatched"
    assert fired.task_id  # the agent's task, recorded for the audit trail
