"""A corpus of real-format credentials in every field of every source's payload, through the
real functions into the a2a-sdk agent: none appears in any prompt, A2A request, function
answer, audit record or log line, and the agent sees the masks in their place."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from khook_core.logs import JsonFormatter
from khook_core.runtime import get_runtime
from khook_local.console import summarize
from tests.support.a2a_agent import AGENT_NAME, AGENT_NAMESPACE, TestAgent
from tests.support.credentials import Credential, corpus
from tests.support.sources import HMAC_SECRET, SAMPLES, TOKEN, push_body, sample
from tests.support.webhook_receiver import WebhookReceiver

CORPUS = corpus()
KEY = "5f" * 16
AGENT = f"agentRef: {{name: {AGENT_NAME}, namespace: {AGENT_NAMESPACE}}}"
PROMPT = 'prompt: "{{.ResourceName}}: {{.Reason}} {{.Message}} ({{.Tags.team}})"'
HOOKS = "---\n".join(
    f"""apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: leak-{source}, namespace: {namespace}}}
spec:
  sources: [{source}]
  eventConfigurations:
  - eventType: {event_type}
    {AGENT}
    {PROMPT}
"""
    for source, namespace, event_type in (
        ("webhook", "ci", "deployment-failed"),
        ("alertmanager", "monitoring", "disk-full"),
        ("kafka", "data", "consumer-lag"),
        ("cdc", "data", "row-state-changed"),
        ("kubernetes", "default", "pod-restart"),
    )
)
PLUGINS = """\
plugins:
  - name: webhook
    config:
      endpoints:
        plain: {preset: generic, auth: bearer}
  - name: kafka
    config: {requireMetadata: false}
  - name: kubernetes
    config: {freshnessMinutes: 100000000}
"""


def _named(name: str) -> Credential:
    return next(c for c in CORPUS if c.name == name)


def _all(credentials: list[Credential]) -> str:
    return "\n".join(c.text for c in credentials)


def _fields(credentials: list[Credential]) -> dict[str, str]:
    """One field a credential, named as people name them (and as they do not)."""
    return {f"field_{i}": c.text for i, c in enumerate(credentials)} | {
        "db_password": credentials[0].secret,
        "apiToken": credentials[-1].secret,
    }


def webhook_body() -> bytes:
    return json.dumps(
        {
            "type": "deployment-failed",
            # the resource's name is on the console's decision line
            "resource": {"kind": "Service", "name": f"checkout {_named('url-password').text}"},
            "reason": f"RolloutFailed {CORPUS[5].text}",
            "message": _all(CORPUS),
            "tags": {"team": CORPUS[10].text} | _fields(CORPUS[:6]),
            "metadata": {"request": {"headers": _fields(CORPUS)}, "lines": [_all(CORPUS)]},
        }
    ).encode()


def github_body() -> bytes:
    """A workflow_run delivery whose commit, title and clone URL carry credentials."""
    body = sample("webhook", "github-workflow-run-failure.json")
    run = body["workflow_run"]
    ghp = next(c for c in CORPUS if c.name == "github-classic")
    run["display_title"] = f"Bump checkout {CORPUS[21].text}"
    run["head_commit"]["message"] = _all(CORPUS)
    body["repository"]["clone_url"] = f"https://x-access-token:{ghp.secret}@github.com/o/s.git"
    return json.dumps(body).encode()


def alertmanager_body() -> bytes:
    body = sample("alertmanager", "disk-full.json")
    for alert in body["alerts"]:
        alert["labels"] |= {"team": CORPUS[12].text, "dsn": CORPUS[20].text}
        alert["annotations"] |= {"description": _all(CORPUS)} | _fields(CORPUS)
    body["commonAnnotations"] = _fields(CORPUS)
    body["externalURL"] = f"https://am:{CORPUS[20].secret}@alertmanager.example"
    return json.dumps(body).encode()


def kafka_value() -> bytes:
    """A record under the 4 KiB that travels in ``metadata.record``: the keys are left out."""
    record = sample("kafka", "consumer-lag.json")
    short = [c for c in CORPUS if "PRIVATE KEY" not in c.text]
    record |= {"error": _all(short[:12])} | _fields(short[12:])
    assert len(json.dumps(record)) < 4096
    return json.dumps(record).encode()


def cdc_change() -> bytes:
    """Row images under the 4 KiB that travel in ``metadata``: the keys go in a password column."""
    change = sample("cdc", "debezium-update-no-schema.json")
    short = [c for c in CORPUS if "PRIVATE KEY" not in c.text]
    row = {
        "password_hash": CORPUS[0].secret,
        "ssn": "078-05-1120",
        "card_number": "4111111111111111",
        "note": _all(short[:8]),
    } | _fields(short[8:16])
    change["before"] |= row
    change["after"] |= row
    return json.dumps(change).encode()


def kubernetes_event() -> bytes:
    lines = (SAMPLES / "kubernetes" / "events.jsonl").read_text().splitlines()
    event = next(e for e in map(json.loads, lines) if e.get("reason") == "BackOff")
    event["message"] = f"Back-off restarting failed container app: {_all(CORPUS)}"
    event["metadata"]["annotations"] = _fields(CORPUS)
    return json.dumps(event).encode()


@pytest.fixture
def env(function_env: Callable[..., Any], a2a_agent: TestAgent) -> Iterator[None]:
    function_env(
        plugins=PLUGINS,
        hooks=HOOKS,
        KHOOK_DISPATCH="auto",
        KAGENT_API_URL=a2a_agent.base_url,
        KHOOK_WEBHOOK_TOKEN=TOKEN,
        KHOOK_WEBHOOK_HMAC_SECRET=HMAC_SECRET,
        KHOOK_ALERTMANAGER_TOKEN=TOKEN,
        KHOOK_REDACTION_KEY=KEY,
    )
    yield
    get_runtime().close()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every khook_core record in ``caplog``: a function's start replaces the root logger's
    handlers with its own (``logs.configure``), pytest's among them, so the capture hangs on
    the library's logger instead."""
    caplog.set_level(logging.DEBUG)
    library = logging.getLogger("khook_core")
    library.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        library.removeHandler(caplog.handler)


def send(
    source: str, http_client: Callable[[str], Any], cloudevent_client: Callable[[str], Any]
) -> Any:
    bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if source == "webhook":
        return http_client("webhook").post("/plain", data=webhook_body(), headers=bearer)
    if source == "github":
        body = github_body()
        signed = hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-Hub-Signature-256": f"sha256={signed}",
            "X-GitHub-Event": "workflow_run",
            "Content-Type": "application/json",
        }
        return http_client("webhook").post("/github", data=body, headers=headers)
    if source == "alertmanager":
        return http_client("alertmanager").post("/", data=alertmanager_body(), headers=bearer)
    data = {"kafka": kafka_value, "cdc": cdc_change, "kubernetes": kubernetes_event}[source]()
    attributes = (
        {"khook.source": "kubernetes", "khook.api": "v1"} if source == "kubernetes" else None
    )
    return cloudevent_client(source).post(
        f"/projects/p1/topics/khook-{source}", json=push_body(data, attributes)
    )


def leaks(text: str) -> dict[str, list[str]]:
    found = {c.name: c.leaks(text) for c in CORPUS}
    return {name: parts for name, parts in found.items() if parts}


@pytest.mark.parametrize(
    "source", ["webhook", "github", "alertmanager", "kafka", "cdc", "kubernetes"]
)
def test_no_credential_leaves_in_any_output(
    source: str,
    env: None,
    a2a_agent: TestAgent,
    http_client: Callable[[str], Any],
    cloudevent_client: Callable[[str], Any],
    logged: pytest.LogCaptureFixture,
) -> None:
    caplog = logged
    reply = send(source, http_client, cloudevent_client)

    assert reply.status_code in (200, 204), reply.get_data(as_text=True)
    # the step's own line is there: the function's log lines were captured
    assert any(r.name == "khook_core.redaction.redactor" for r in caplog.records)
    assert len(a2a_agent.runs) == 1, reply.get_data(as_text=True)
    run = a2a_agent.runs[0]
    assert "[redacted:" in run.text  # the agent sees where a secret was
    outputs = {
        "A2A requests": "\n".join(r.body.decode() for r in a2a_agent.requests),
        "agent text and metadata": run.text + json.dumps(run.metadata),
        "function answer": reply.get_data(as_text=True),
        "log lines": caplog.text,
        "audit records": repr(get_runtime().store.firings()),
    }
    assert {where: leaks(text) for where, text in outputs.items() if leaks(text)} == {}


def test_no_credential_reaches_a_local_console_line(
    env: None,
    a2a_agent: TestAgent,
    http_client: Callable[[str], Any],
    cloudevent_client: Callable[[str], Any],
    logged: pytest.LogCaptureFixture,
) -> None:
    """What ``khook up`` prints: each log record as a function writes it (JSON), turned into
    its console line the way the stack's log follower does. The webhook's resource name, on
    the decision line, carries a connection string."""
    caplog = logged

    reply = send("webhook", http_client, cloudevent_client)

    assert reply.status_code in (200, 204), reply.get_data(as_text=True)
    formatter = JsonFormatter()
    json_lines = [formatter.format(record) for record in caplog.records]
    console_lines = [
        line for line in (summarize(json.loads(text)) for text in json_lines) if line is not None
    ]
    assert any("dispatched" in line for line in console_lines), console_lines
    assert leaks("\n".join(json_lines)) == {}
    assert leaks("\n".join(console_lines)) == {}


def test_the_same_secret_masks_alike_in_every_source(
    env: None,
    a2a_agent: TestAgent,
    http_client: Callable[[str], Any],
    cloudevent_client: Callable[[str], Any],
) -> None:
    send("webhook", http_client, cloudevent_client)
    get_runtime().close()  # the next function's start replaces the runtime
    send("kafka", http_client, cloudevent_client)

    masks = [set(_masks(run.text)) for run in a2a_agent.runs]
    assert len(masks) == 2
    assert masks[0] & masks[1]  # an agent can tell the same key came back


def _masks(text: str) -> list[str]:
    return re.findall(r"\[redacted:[a-z0-9-]+:[0-9a-f]{8}\]", text)


def _webhook_target_hooks(url: str) -> str:
    """Two hooks notifying ``url``: the default body, and a template of placeholders."""
    return f"""apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: notify, namespace: ci}}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: deployment-failed
    webhook: {{url: "{url}"}}
    prompt: "{{{{.ResourceName}}}}: {{{{.Message}}}}"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: notify-templated, namespace: ci}}
spec:
  sources: [webhook]
  eventConfigurations:
  - eventType: deployment-failed
    webhook:
      url: "{url}"
      body: {{text: "{{{{.Reason}}}} {{{{.Tags.team}}}}", details: {{prompt: "{{{{.Prompt}}}}"}}}}
    prompt: "{{{{.Message}}}}"
"""


def test_no_credential_reaches_a_webhook_target(
    function_env: Callable[..., Any],
    webhook_receiver: WebhookReceiver,
    http_client: Callable[[str], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    function_env(
        plugins=PLUGINS,
        hooks=_webhook_target_hooks(webhook_receiver.url),
        KHOOK_DISPATCH="auto",
        KHOOK_WEBHOOK_TOKEN=TOKEN,
        KHOOK_REDACTION_KEY=KEY,
    )
    caplog.set_level(logging.DEBUG)
    bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        reply = http_client("webhook").post("/plain", data=webhook_body(), headers=bearer)
    finally:
        get_runtime().close()

    assert reply.status_code == 200, reply.get_data(as_text=True)
    bodies = [r.body.decode() for r in webhook_receiver.received]
    assert len(bodies) == 2
    for body in bodies:
        assert "[redacted:" in body
        assert leaks(body) == {}
    assert leaks(caplog.text) == {}
