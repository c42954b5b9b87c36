"""``report: - github`` from end to end: a GitHub delivery through functions/webhook, the task
followed by functions/sweep, the finding commented on the pull request or the commit, every
request checked against GitHub's published OpenAPI description (``tests/support/github_api``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.state.base import Firing
from tests.support.a2a_agent import TestAgent
from tests.support.github_api import GithubApi, github_api
from tests.support.sources import HMAC_SECRET, sample_bytes
from tests.support.sweep import tracked_webhook, until_task_ends

HOOK = "ci/ci-failures"
HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: ci-failures, namespace: ci}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: deployment-failed
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "{{.Message}}. Find out why."
    report:
    - github: {tokenEnv: KHOOK_GITHUB_TEST_TOKEN, apiUrl: "%s"}
    - github: {tokenEnv: KHOOK_GITHUB_UNSET_TOKEN, apiUrl: "%s"}
"""
HOSTILE = (
    "@octo-org/owners @admin see [the fix](https://evil.example) ![x](https://evil.example/i.png)"
    " <img src=x onerror=alert(1)> ```\n# HEADING\n````` \x1b\u202e " + "A" * 100_000
)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GithubApi]:
    with github_api() as api:
        yield api


@pytest.fixture
def functions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a2a_agent: TestAgent,
    github: GithubApi,
    function_client: Callable[[str], Any],
) -> Iterator[tuple[Any, Any]]:
    with tracked_webhook(
        tmp_path,
        monkeypatch,
        HOOKS % (github.url, github.url),
        a2a_agent.base_url,
        function_client,
        KHOOK_GITHUB_TEST_TOKEN=github.token,
    ) as functions:
        yield functions


def deliver(functions: tuple[Any, Any], body: bytes, kind: str) -> Firing:
    webhook, sweep = functions
    signature = "sha256=" + hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    reply = webhook.post(
        "/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": kind,
            "X-Hub-Signature-256": signature,
        },
    )
    assert reply.status_code == 200, reply.get_json()
    return until_task_ends(sweep, HOOK)


def workflow_run(pull: int | None) -> bytes:
    body = json.loads(sample_bytes("webhook", "github-workflow-run-failure.json"))
    body["workflow_run"]["pull_requests"] = [{"number": pull, "id": 7}] if pull else []
    return json.dumps(body).encode()


def test_a_failed_run_of_a_pull_request_is_answered_on_it_escaped_and_capped(
    functions: tuple[Any, Any], a2a_agent: TestAgent, github: GithubApi
) -> None:
    a2a_agent.answer = HOSTILE
    end = deliver(functions, workflow_run(42), "workflow_run")

    assert github.invalid == []
    assert end.extra == {
        "report.0.github": "sent",
        "report.1.github": "skipped: KHOOK_GITHUB_UNSET_TOKEN is not set",
    }
    [call] = github.calls
    assert call.operation == "issues/create-comment"
    assert call.params == {"owner": "octo-org", "repo": "shop", "issue_number": "42"}
    assert call.headers["x-github-api-version"] == "2022-11-28"
    body: str = call.body["body"]
    assert len(body) < 4500  # the stored finding (4,000 characters) and our own lines
    # the finding sits in one code block its backticks cannot close: nothing in it renders
    fence = re.match(r"\*\*[^\n]*\*\*\n\n(`{3,})text\n", body)
    assert fence is not None
    assert len(fence.group(1)) == 6  # longer than the run of five in the finding
    inside = body[fence.end() :]
    assert inside.endswith(f"\n{fence.group(1)}")
    assert inside.count(fence.group(1)) == 1
    assert "@octo-org/owners @admin see [the fix](https://evil.example)" in inside
    assert "\\u001b\\u202e" in inside
    assert "\x1b" not in body
    assert "\u202e" not in body


def test_a_failed_run_without_a_pull_request_is_answered_on_its_commit(
    functions: tuple[Any, Any], a2a_agent: TestAgent, github: GithubApi
) -> None:
    a2a_agent.answer = "The test job ran out of disk."
    end = deliver(functions, workflow_run(None), "workflow_run")

    assert github.invalid == []
    assert end.extra["report.0.github"] == "sent"
    [call] = github.calls
    assert call.operation == "repos/create-commit-comment"
    assert call.params == {
        "owner": "octo-org",
        "repo": "shop",
        "commit_sha": "acb5820ced9479c074f688cc328bf03f341a511d",
    }
    assert call.body["body"].endswith("```text\nThe test job ran out of disk.\n```")


def test_a_failed_deployment_is_answered_on_the_deployed_commit(
    functions: tuple[Any, Any], a2a_agent: TestAgent, github: GithubApi
) -> None:
    a2a_agent.answer = "The migration timed out."
    body = sample_bytes("webhook", "github-deployment-status-failure.json")
    sha = json.loads(body)["deployment"]["sha"]
    end = deliver(functions, body, "deployment_status")

    assert github.invalid == []
    assert end.extra["report.0.github"] == "sent"
    [call] = github.calls
    assert call.operation == "repos/create-commit-comment"
    assert call.params["commit_sha"] == sha


def test_the_described_api_refuses_what_github_would(github: GithubApi) -> None:
    """The stand-in is strict: a body or path GitHub's description refuses is answered 422."""
    import httpx

    headers = {
        "Authorization": f"Bearer {github.token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    for path, body in (
        ("/repos/o/r/issues/abc/comments", {"body": "x"}),
        ("/repos/o/r/issues/1/comments", {"text": "x"}),
        ("/repos/o/r/commits/abc/comments", {"body": 1}),
    ):
        reply = httpx.post(github.url + path, json=body, headers=headers)
        assert reply.status_code == 422
    assert httpx.post(github.url + "/repos/o/r/pulls/1/reviews", json={}).status_code == 404
    assert github.calls == []
