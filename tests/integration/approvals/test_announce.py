"""A new approval is announced in the hook's Slack and Google Chat destinations, with the
pending tool calls and the command that decides it, the agent's text escaped like a finding."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push
from tests.support.sweep import tick_until
from tests.support.webhook_receiver import WebhookReceiver

REPORT = """\
report:
- slack: {urlEnv: KHOOK_SLACK_SHOP_URL}
- googleChat: {urlEnv: KHOOK_CHAT_SHOP_URL}
- webhook: {url: "%s/hook"}"""
REQUEST = {
    "type": "tool_approval_request",
    "hint": "Restart <!channel> now?",
    "tools": [{"id": "conf-1", "name": "restart_pod", "args": {"name": "web-0"}}],
}


@pytest.fixture
def functions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    webhook_receiver: WebhookReceiver,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    base = webhook_receiver.url.split("/hooks/")[0]
    env = {
        "KHOOK_CONFIG_DIR": str(make_config(tmp_path, restart_hook(extensions=REPORT % base))),
        "KAGENT_API_URL": a2a_agent.base_url,
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KHOOK_TRACK_FIRST_CHECK": "0",
        "KHOOK_TRACK_BACKOFF": "0.01",
        "KHOOK_TRACK_MAX_BACKOFF": "0.02",
        "KHOOK_SLACK_SHOP_URL": f"{base}/slack",
        "KHOOK_CHAT_SHOP_URL": f"{base}/chat",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    a2a_agent.hitl = REQUEST
    yield function_client("kubernetes"), function_client("sweep")
    get_runtime().close()


def test_the_pending_call_and_the_command_reach_slack_and_chat_once(
    functions: tuple[Any, Any], webhook_receiver: WebhookReceiver
) -> None:
    kubernetes, sweep = functions
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200
    store = get_runtime().approval_store()
    tick_until(sweep, lambda: bool(store.approvals(open_only=True, limit=5)))
    for _ in range(3):  # the pause is seen again: no second announcement
        tick_until(sweep, lambda: True)
    [approval] = store.approvals(open_only=True, limit=5)

    paths = [r.path for r in webhook_receiver.received]
    assert sorted(paths) == ["/chat", "/slack"]  # chat destinations only, once each
    slack = next(r for r in webhook_receiver.received if r.path == "/slack").json()
    section = slack["blocks"][1]["text"]["text"]
    assert f"Approval {approval.id} waits for a decision" in section
    assert '- restart_pod {"name": "web-0"} (call conf-1)' in section
    assert f"khook approve {approval.id}" in section
    assert "&lt;!channel&gt;" in section
    assert "<!channel>" not in str(slack)
    chat = next(r for r in webhook_receiver.received if r.path == "/chat").json()
    assert "restart_pod" in str(chat)
    assert "&lt;!channel&gt;" in str(chat)
