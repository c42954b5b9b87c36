"""A task's finding goes to each destination of its hook's ``report:`` list, escaped for it.

functions/kubernetes and functions/sweep through the real functions-framework apps, one SQLite
state file, the a2a-sdk test agent (whose finding is hostile text) and a local HTTP receiver
standing in for Slack's and Google Chat's incoming webhooks and a plain webhook endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from khook_core.state.base import Firing
from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_api import FakeKubeApi
from tests.support.kubernetes_push import TOPIC, push
from tests.support.sweep import until_task_ends
from tests.support.webhook_receiver import Received, WebhookReceiver

HOOK = "shop/shop-restarts"
REPORT = """\
report:
- slack: {urlEnv: KHOOK_SLACK_SHOP_URL}
- googleChat: {urlEnv: KHOOK_CHAT_SHOP_URL}
- webhook:
    url: "%s/hook"
    body: {text: "{{.TaskState}}: {{.Finding}}", task: "{{.TaskID}}", link: "{{.AgentTaskURL}}"}
- slack: {urlEnv: KHOOK_SLACK_UNSET_URL}"""
HOSTILE = (
    "<!channel> <@U024BE7LH> see <https://evil.example/steal|the runbook> & "
    "[docs](https://evil.example) <users/all> <a href='https://evil.example'>x</a>\x07\u202e"
    + "A"
    * 100_000
)


@pytest.fixture
def functions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    webhook_receiver: WebhookReceiver,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    base = webhook_receiver.url.split("/hooks/")[0]
    hook = restart_hook(extensions=REPORT % base)
    env = {
        "KHOOK_CONFIG_DIR": str(make_config(tmp_path, hook)),
        "KAGENT_API_URL": a2a_agent.base_url,
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KHOOK_TRACK_FIRST_CHECK": "0",
        "KHOOK_DISPATCH_BACKOFF": "0.01",
        "KHOOK_SLACK_SHOP_URL": f"{base}/slack",
        "KHOOK_CHAT_SHOP_URL": f"{base}/chat",
        "KHOOK_CONSOLE_TASK_URL": "https://kagent.example/agents/{agent}/tasks/{task_id}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield function_client("kubernetes"), function_client("sweep")
    get_runtime().close()


def run_to_the_end(functions: tuple[Any, Any]) -> Firing:
    kubernetes, sweep = functions
    event = FakeKubeApi().create(namespace="shop", object_name="web-0")
    assert kubernetes.post(TOPIC, json=push(event, "4711", 1)).status_code == 200
    return until_task_ends(sweep, HOOK)


def by_path(receiver: WebhookReceiver) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for request in receiver.received:
        found.setdefault(request.path, []).append(request)
    return found


def test_a_hostile_finding_reaches_slack_chat_and_a_webhook_escaped_and_capped(
    functions: tuple[Any, Any], a2a_agent: TestAgent, webhook_receiver: WebhookReceiver
) -> None:
    a2a_agent.answer = HOSTILE
    end = run_to_the_end(functions)

    assert end.finding_chars == str(len(HOSTILE))
    assert len(end.finding) == 4000
    assert "\\u0007" in end.finding
    assert "\\u202e" in end.finding
    assert end.extra == {
        "report.0.slack": "sent",
        "report.1.googleChat": "sent",
        "report.2.webhook": "sent",
        "report.3.slack": "skipped: KHOOK_SLACK_UNSET_URL is not set",
    }
    sent = by_path(webhook_receiver)
    assert sorted(sent) == ["/chat", "/hook", "/slack"]

    [slack] = [r.json() for r in sent["/slack"]]
    header, section, context = slack["blocks"]
    assert (header["type"], header["text"]["type"]) == ("header", "plain_text")
    assert len(header["text"]["text"]) <= 150
    assert (section["type"], section["text"]["type"]) == ("section", "mrkdwn")
    text = section["text"]["text"]
    assert len(text) <= 3000
    assert text.startswith(
        "&lt;!channel&gt; &lt;@U024BE7LH&gt; see &lt;https://evil.example/steal|the runbook&gt; "
        "&amp; "
    )
    for raw in ("<!channel>", "<@U024BE7LH>", "<https://evil.example"):
        assert raw not in slack["text"]
        assert raw not in text
    assert context["type"] == "context"
    assert (
        "<https://kagent.example/agents/kagent/k8s-agent/tasks/" in context["elements"][0]["text"]
    )

    [chat] = [r.json() for r in sent["/chat"]]
    assert set(chat) == {"cardsV2"}  # no plain text field: it would parse <users/…> mentions
    paragraph = chat["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"]
    assert "&lt;users/all&gt;" in paragraph
    assert "<users/all>" not in paragraph
    assert "&lt;a href=&#x27;https://evil.example&#x27;&gt;" in paragraph
    assert "<a href" not in paragraph

    [hook] = [r.json() for r in sent["/hook"]]
    assert hook["text"] == f"completed: {end.finding}"
    assert hook["task"] == end.task_id
    assert hook["link"] == f"https://kagent.example/agents/kagent/k8s-agent/tasks/{end.task_id}"


def test_each_destination_has_its_own_status_and_a_transient_failure_is_retried(
    functions: tuple[Any, Any], a2a_agent: TestAgent, webhook_receiver: WebhookReceiver
) -> None:
    a2a_agent.answer = "Root cause: OOM"
    webhook_receiver.answer(503, "try later")  # Slack, first attempt: retried
    webhook_receiver.answer(200, "ok")  # Slack, the retry
    webhook_receiver.answer(400, "invalid_payload")  # Google Chat: refused, not retried

    end = run_to_the_end(functions)

    assert end.extra["report.0.slack"] == "sent"
    assert end.extra["report.1.googleChat"] == "failed: HTTP 400: invalid_payload"
    assert end.extra["report.2.webhook"] == "sent"
    assert [r.path for r in webhook_receiver.received] == ["/slack", "/slack", "/chat", "/hook"]
