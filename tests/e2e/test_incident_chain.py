"""One incident for a bad deploy, across three sources, in one agent conversation.

functions-framework serving ``functions/alertmanager``, ``functions/kubernetes``,
``functions/webhook`` and ``functions/sweep`` as separate processes sharing one SQLite state
file → the a2a-sdk test agent. Pub/Sub pushes (the events, the scheduler's ticks) are posted
the way the push subscription posts them. Within minutes: Alertmanager's KubePodCrashLooping
for ``shop/checkout-7d9f8-x2x4q``, three BackOff Events for two Pods of the Deployment, and
GitHub's failed ``deployment_status`` of the environment mapped to ``shop/Deployment/checkout``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config
from tests.support.functions import FunctionServer
from tests.support.incidents import (
    PLUGINS,
    backoff,
    crash_looping,
    deployment_failure,
    hooks,
)
from tests.support.sources import push_body

TOKEN = "alerts-e2e-token"
SECRET = "github-e2e-secret"
FOLLOW_UP_S = 1.5
ATTRIBUTES = {"khook.source": "kubernetes", "khook.api": "v1", "khook.cluster": "e2e"}


def evidence(text: str) -> list[str]:
    start = text.index("\n{", text.index("<<<KHOOK_EVENT_DATA")) + 1
    data: dict[str, Any] = json.loads(text[start : text.index("\n<<<END_KHOOK_EVENT_DATA")])
    events: list[str] = data["events"]
    return events


def test_a_bad_deploy_is_one_run_and_its_later_evidence_follow_ups_in_one_context(
    tmp_path: Path,
    a2a_agent: TestAgent,
    function_server: Callable[..., FunctionServer],
    wait_until: Callable[..., None],
):
    config = make_config(tmp_path, hooks(f"{FOLLOW_UP_S}s"), plugins=PLUGINS)
    env = {
        "KHOOK_CONFIG_DIR": str(config),
        "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}",
        "KAGENT_API_URL": a2a_agent.base_url,
        "KHOOK_LOG_FORMAT": "json",
        "KHOOK_ALERTMANAGER_TOKEN": TOKEN,
        "KHOOK_WEBHOOK_HMAC_SECRET": SECRET,
    }
    alerts = function_server("alertmanager", env=env, signature="http")
    github = function_server("webhook", env=env, signature="http")
    kubernetes = function_server("kubernetes", env=env)
    sweeper = function_server("sweep", env=env)
    now = datetime.now(UTC)
    pushes = iter(range(1, 100))

    def push(server: FunctionServer, data: dict[str, Any], attributes: dict[str, str]) -> None:
        body = push_body(json.dumps(data).encode(), attributes, message_id=str(next(pushes)))
        reply = httpx.post(f"{server.url}/projects/p/topics/t", json=body, timeout=30)
        assert reply.status_code < 300, reply.text

    def tick() -> None:
        push(sweeper, {}, {})

    def joined(count: int) -> None:
        def has(record: dict[str, Any]) -> bool:
            return "joined:incident" in record.get("message", "")

        wait_until(
            lambda: (
                sum(len([r for r in s.records() if has(r)]) for s in (kubernetes, github)) >= count
            ),
            timeout=30,
            what=f"{count} joined event(s)",
        )

    reply = httpx.post(
        alerts.url,
        json=crash_looping(now),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert [d["decision"] for d in reply.json()["decisions"]] == ["opened:incident"]
    wait_until(lambda: len(a2a_agent.runs) == 1, timeout=30, what="the incident's run")
    [run] = a2a_agent.runs
    incident = run.context_id
    assert incident.startswith("inc-")

    push(kubernetes, backoff("checkout-7d9f8-x2x4q", 1, now + timedelta(minutes=1)), ATTRIBUTES)
    push(kubernetes, backoff("checkout-7d9f8-b7k2m", 1, now + timedelta(minutes=1)), ATTRIBUTES)
    push(kubernetes, backoff("checkout-7d9f8-x2x4q", 2, now + timedelta(minutes=2)), ATTRIBUTES)
    joined(3)
    tick()
    wait_until(lambda: len(a2a_agent.runs) == 2, timeout=30, what="the first follow-up")

    body = json.dumps(deployment_failure(now + timedelta(minutes=3))).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    reply = httpx.post(
        f"{github.url}/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "deployment_status",
            "X-GitHub-Delivery": "d-1",
            "X-Hub-Signature-256": f"sha256={signature}",
        },
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert [d["decision"] for d in reply.json()["decisions"]] == ["joined:incident"]
    time.sleep(FOLLOW_UP_S)  # the follow-up interval of the incident
    tick()
    wait_until(lambda: len(a2a_agent.runs) == 3, timeout=30, what="the second follow-up")
    tick()  # nothing new: no third follow-up
    sweeper.wait_for_log(lambda r: "sweep tick" in r.get("message", ""), count=3)

    runs = a2a_agent.runs
    assert len(runs) == 3
    assert {r.context_id for r in runs} == {incident}
    assert runs[0].text.startswith('Alert "KubePodCrashLooping"')
    first, second = evidence(runs[1].text), evidence(runs[2].text)
    assert runs[1].text.startswith("New evidence for the incident you are investigating")
    assert len(first) == 3
    assert all("pod-restart" in line and "BackOff" in line for line in first)
    assert sum("checkout-7d9f8-x2x4q" in line for line in first) == 2
    assert sum("checkout-7d9f8-b7k2m" in line for line in first) == 1
    [deploy] = second
    assert "deployment-failed" in deploy
