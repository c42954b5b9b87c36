"""A storm's tail reaches the agent after the storm stops, through the scheduled sweep.

Pub/Sub emulator → push subscriptions → functions-framework serving ``functions/kubernetes``
and ``functions/sweep`` as separate processes sharing one SQLite state file → the a2a-sdk test
agent. The scheduler is played by the test publishing ticks to the sweep topic.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.functions import FunctionServer
from tests.support.kube_api import FakeKubeApi
from tests.support.pubsub import PubSubEmulator

WINDOW_S = 6
"""Long enough that the early tick surely lands inside the window, even on a slow machine."""
HOOK = restart_hook(
    prompt="Pods of {{.ResourceName}} keep restarting.",
    extensions=f"coalesce: {{window: {WINDOW_S}s}}",
)
ATTRIBUTES = {"khook.source": "kubernetes", "khook.api": "events.k8s.io/v1", "khook.cluster": "e2e"}
QUIET_S = 2.0
"""How long nothing more may reach the agent after a tick that owes it nothing."""


def held_back(text: str) -> dict[str, Any] | None:
    start = text.index("\n{", text.index("<<<KHOOK_EVENT_DATA")) + 1
    data: dict[str, Any] = json.loads(text[start : text.index("\n<<<END_KHOOK_EVENT_DATA")])
    return data.get("held_back")


def test_a_quiet_groups_held_events_reach_the_agent_on_the_next_tick_once(
    tmp_path: Path,
    pubsub_emulator: PubSubEmulator,
    a2a_agent: TestAgent,
    function_server: Callable[..., FunctionServer],
    wait_until: Callable[..., None],
):
    config = make_config(tmp_path, HOOK)
    env = {
        "KHOOK_CONFIG_DIR": str(config),
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KAGENT_API_URL": a2a_agent.base_url,
        "KHOOK_LOG_FORMAT": "json",
    }
    kubernetes = function_server("kubernetes", env=env)
    sweeper = function_server("sweep", env=env)
    events, ticks = pubsub_emulator.create_topic(), pubsub_emulator.create_topic()
    for topic, function in ((events, kubernetes), (ticks, sweeper)):
        pubsub_emulator.create_subscription(
            topic, push_endpoint=f"{function.url}/{pubsub_emulator.topic_path(topic)}"
        )

    def tick() -> str:
        return pubsub_emulator.publish(ticks, b"{}", {})

    def swept(tick_id: str) -> dict[str, Any]:
        def done(record: dict[str, Any]) -> bool:
            labels = record.get("logging.googleapis.com/labels") or {}
            return labels.get("pubsub_message_id") == tick_id and "sweep tick" in record.get(
                "message", ""
            )

        [record] = sweeper.wait_for_log(done)
        return record

    # A storm of three pods of deployment web: the first fires, two are held back.
    api = FakeKubeApi()
    pods = ["web-7d9f8c6b5-bbbbb", "web-7d9f8c6b5-ccccc", "web-7d9f8c6b5-ddddd"]
    for pod in pods:
        event = api.create(namespace="shop", object_name=pod, when=datetime.now(UTC))
        pubsub_emulator.publish(events, json.dumps(event).encode(), ATTRIBUTES)
    wait_until(lambda: len(a2a_agent.runs) == 1, timeout=30, what="the storm's first run")
    kubernetes.wait_for_log(lambda r: "coalesced" in r.get("message", ""), count=2)
    assert held_back(a2a_agent.runs[0].text) is None
    # Pub/Sub does not keep order: whichever pod arrived first fired, the other two were held.
    instruction = a2a_agent.runs[0].text.split("\n", 1)[0]
    [fired] = [pod for pod in pods if pod in instruction]

    early = swept(tick())  # the group's window is still open: nothing is owed yet
    assert "1 coalesced" in early["message"]
    time.sleep(QUIET_S)
    assert len(a2a_agent.runs) == 1

    time.sleep(WINDOW_S)
    swept(tick())
    wait_until(lambda: len(a2a_agent.runs) == 2, timeout=30, what="the sweep's run")
    tail = a2a_agent.runs[1]
    summary = held_back(tail.text)
    assert summary is not None
    assert summary["count"] == 2
    assert sorted(summary["resources"]) == [f"shop/Pod/{pod}" for pod in pods if pod != fired]
    assert "held back by storm control" in tail.text

    last = swept(tick())  # nothing left: no second run for the same events
    assert "nothing held" in last["message"]
    time.sleep(QUIET_S)
    assert len(a2a_agent.runs) == 2
