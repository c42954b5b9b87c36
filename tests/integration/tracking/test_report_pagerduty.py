"""``report: - pagerduty`` from end to end: a signed PagerDuty v3 webhook through
functions/webhook, the task followed by functions/sweep, the finding added as a note on the
incident, every request checked against what PagerDuty's API reference requires
(``tests/support/pagerduty_api``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.state.base import Firing
from tests.support.a2a_agent import TestAgent
from tests.support.pagerduty_api import ACCEPT, PagerdutyApi, pagerduty_api
from tests.support.sources import HMAC_SECRET, sample, sample_bytes
from tests.support.sweep import tracked_webhook, until_task_ends

PD_SECRET = "pagerduty-subscription-secret-01"
INCIDENT = "Q2NW6K1ZT0RQ8A"  # the sample's incident
HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: paging, namespace: ops}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: pagerduty-incident
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "PagerDuty: {{.Message}}"
    report:
    - pagerduty: {tokenEnv: KHOOK_PAGERDUTY_TEST_TOKEN, from: oncall-bot@example.com, apiUrl: "%s"}
    - pagerduty: {tokenEnv: KHOOK_PAGERDUTY_UNSET_TOKEN, from: oncall-bot@example.com}
  - eventType: deployment-failed
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "{{.Message}}. Find out why."
    report:
    - pagerduty: {tokenEnv: KHOOK_PAGERDUTY_TEST_TOKEN, from: oncall-bot@example.com, apiUrl: "%s"}
"""
HOSTILE = (
    "<script>alert(1)</script> <a href=https://evil.example>runbook</a> [fix](https://evil.example)"
    " \x1b[31m \u202e \u200b" + "A" * 100_000
)


@pytest.fixture
def pagerduty() -> Iterator[PagerdutyApi]:
    with pagerduty_api() as api:
        yield api


@pytest.fixture
def functions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    pagerduty: PagerdutyApi,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    with tracked_webhook(
        tmp_path,
        monkeypatch,
        HOOKS % (pagerduty.url, pagerduty.url),
        a2a_agent.base_url,
        function_client,
        KHOOK_WEBHOOK_PAGERDUTY_SECRET=PD_SECRET,
        KHOOK_PAGERDUTY_TEST_TOKEN=pagerduty.token,
    ) as functions:
        yield functions


def page(functions: tuple[Any, Any], body: bytes | None = None) -> Firing:
    webhook, sweep = functions
    body = body or sample_bytes("webhook", "pagerduty-incident-triggered.json")
    signature = "v1=" + hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    reply = webhook.post(
        "/pagerduty",
        data=body,
        headers={"Content-Type": "application/json", "X-PagerDuty-Signature": signature},
    )
    assert reply.status_code == 200, reply.get_json()
    return until_task_ends(sweep, "ops/paging")


def test_an_incident_gets_the_finding_as_a_note_escaped_and_capped(
    functions: tuple[Any, Any], a2a_agent: TestAgent, pagerduty: PagerdutyApi
) -> None:
    a2a_agent.answer = HOSTILE
    end = page(functions)

    assert pagerduty.invalid == []
    assert end.extra == {
        "report.0.pagerduty": "sent",
        "report.1.pagerduty": "skipped: KHOOK_PAGERDUTY_UNSET_TOKEN is not set",
    }
    [call] = pagerduty.calls
    assert call.incident == INCIDENT
    assert call.headers["authorization"] == f"Token token={pagerduty.token}"
    assert call.headers["accept"] == ACCEPT
    assert call.headers["from"] == "oncall-bot@example.com"
    assert call.content.startswith("khook: the agent's task for pagerduty-incident ended ")
    assert len(call.content) < 4500  # the stored finding (4,000 characters) and our own lines
    assert call.content.endswith("…")
    # plain text: the markup arrives as the characters it was, the invisible ones made visible
    assert "<script>alert(1)</script> <a href=https://evil.example>runbook</a>" in call.content
    assert "\\u001b[31m \\u202e \\u200b" in call.content
    for hidden in ("\x1b", "\u202e", "\u200b"):
        assert hidden not in call.content


def test_a_failing_pagerduty_is_retried_within_the_budget(
    functions: tuple[Any, Any], a2a_agent: TestAgent, pagerduty: PagerdutyApi
) -> None:
    a2a_agent.answer = "The checkout pods ran out of database connections."
    pagerduty.fail_with = [503, 502]
    end = page(functions)

    assert end.extra["report.0.pagerduty"] == "sent"
    assert pagerduty.requests == 3
    [call] = pagerduty.calls
    assert call.content.endswith("\n\nThe checkout pods ran out of database connections.")


def test_a_note_that_may_have_arrived_is_not_sent_again(
    functions: tuple[Any, Any], a2a_agent: TestAgent, pagerduty: PagerdutyApi
) -> None:
    a2a_agent.answer = "Root cause: a bad deploy."
    pagerduty.drop = True  # read, never answered: as after a read timeout
    end = page(functions)

    assert end.extra["report.0.pagerduty"].startswith("failed: ")
    assert pagerduty.requests == 1


def test_an_event_not_from_pagerduty_is_skipped(
    functions: tuple[Any, Any], a2a_agent: TestAgent, pagerduty: PagerdutyApi
) -> None:
    a2a_agent.answer = "The test job ran out of disk."
    webhook, sweep = functions
    body = sample("webhook", "github-workflow-run-failure.json")
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(HMAC_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    reply = webhook.post(
        "/github",
        data=raw,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_run",
            "X-Hub-Signature-256": signature,
        },
    )
    assert reply.status_code == 200, reply.get_json()
    end = until_task_ends(sweep, "ops/paging")

    assert end.extra == {"report.0.pagerduty": "skipped: not a PagerDuty incident event"}
    assert pagerduty.requests == 0


def test_the_stand_in_refuses_what_pagerduty_would(pagerduty: PagerdutyApi) -> None:
    """The stand-in is strict: a request PagerDuty's reference refuses is answered 400/404."""
    import httpx

    good = {
        "Authorization": f"Token token={pagerduty.token}",
        "Accept": ACCEPT,
        "From": "oncall-bot@example.com",
    }
    for headers, body in (
        ({**good, "Authorization": f"Bearer {pagerduty.token}"}, {"note": {"content": "x"}}),
        ({**good, "Accept": "application/json"}, {"note": {"content": "x"}}),
        ({k: v for k, v in good.items() if k != "From"}, {"note": {"content": "x"}}),
        (good, {"content": "x"}),
        (good, {"note": {"content": 1}}),
        (good, {"note": {"content": "x", "html": "<b>"}}),
    ):
        reply = httpx.post(
            f"{pagerduty.url}/incidents/{INCIDENT}/notes", json=body, headers=headers
        )
        assert reply.status_code == 400
    assert httpx.post(f"{pagerduty.url}/incidents/{INCIDENT}", json={}).status_code == 404
    assert pagerduty.calls == []
