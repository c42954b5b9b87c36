"""Bad requests to the HTTP functions, through functions-framework: every one gets its status
and a JSON body naming the problem; good ones get a 200 summary."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from khook_core.errors import TransientError
from khook_core.runtime import get_runtime
from khook_core.transport import http
from tests.support.sources import HMAC_SECRET, TOKEN, sample_bytes

ALERTS = sample_bytes("alertmanager", "kube-pod-crash-looping-firing.json")
GENERIC = sample_bytes("webhook", "generic-deployment-failed.json")
WORKFLOW_RUN = sample_bytes("webhook", "github-workflow-run-failure.json")
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SMALL_LIMIT_PLUGINS = """\
plugins:
  - name: webhook
    config:
      endpoints:
        tiny: {preset: generic, maxBodyBytes: 64}
        stamped: {preset: generic, auth: hmac, timestampHeader: X-Khook-Timestamp,
                  replayWindowSeconds: 300}
  - name: alertmanager
    config: {maxBodyBytes: 4096}
"""


def signature(body: bytes, secret: str = HMAC_SECRET, prefix: bytes = b"") -> str:
    return "sha256=" + hmac.new(secret.encode(), prefix + body, hashlib.sha256).hexdigest()


@dataclasses.dataclass
class Case:
    """One request and the answer it must get."""

    name: str
    status: int
    field: str | None
    body: bytes = GENERIC
    path: str = "/"
    method: str = "POST"
    content_type: str | None = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.name


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


ALERTMANAGER_CASES = [
    Case("get", 405, "method", ALERTS, method="GET", headers=BEARER, text="use POST"),
    Case("put", 405, "method", ALERTS, method="PUT", headers=BEARER),
    Case(
        "text/plain",
        415,
        "content-type",
        ALERTS,
        content_type="text/plain",
        headers=BEARER,
        text="send application/json",
    ),
    Case("no content type", 415, "content-type", ALERTS, content_type=None, headers=BEARER),
    Case(
        "over the limit",
        413,
        "body",
        b'{"alerts": [' + b" " * 5000 + b"]}",
        headers=BEARER,
        text="over the limit of 4096 bytes",
    ),
    Case("no token", 401, "authorization", ALERTS, text="Authorization: Bearer"),
    Case(
        "wrong token",
        401,
        "authorization",
        ALERTS,
        headers={"Authorization": "Bearer nope"},
        text="wrong",
    ),
    Case(
        "basic auth",
        401,
        "authorization",
        ALERTS,
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
        text="'Bearer <token>'",
    ),
    Case(
        "a signature is not a token",
        401,
        "authorization",
        ALERTS,
        headers={"X-Hub-Signature-256": signature(ALERTS)},
    ),
    Case("broken json", 400, "body", b'{"alerts": [', headers=BEARER, text="malformed JSON"),
    Case("empty body", 400, "body", b"", headers=BEARER, text="empty"),
    Case("not utf-8", 400, "body", b'{"a": "\xff"}', headers=BEARER, text="not UTF-8"),
    Case("NaN", 400, "body", b'{"alerts": [NaN]}', headers=BEARER, text="NaN"),
    Case("deep nesting", 400, "body", _nested(2000), headers=BEARER),
    Case("schema: no alerts", 422, "alerts", b'{"version": "4"}', headers=BEARER),
    Case(
        "schema: bad status",
        422,
        "alerts[0].status",
        ALERTS.replace(b'"status": "firing",\n      "labels"', b'"status": 1,\n      "labels"', 1),
        headers=BEARER,
    ),
    Case("good", 200, None, ALERTS, headers=BEARER),
]

WEBHOOK_CASES = [
    Case("get", 405, "method", method="GET", headers=BEARER),
    Case(
        "form",
        415,
        "content-type",
        content_type="application/x-www-form-urlencoded",
        headers=BEARER,
    ),
    Case(
        "over the endpoint limit",
        413,
        "body",
        path="/tiny",
        headers=BEARER,
        text="over the limit of 64 bytes",
    ),
    Case("unknown endpoint", 404, "path", path="/nope", headers=BEARER, text="configured:"),
    Case("no credentials", 401, "authorization", text="missing credentials"),
    Case("wrong token", 401, "authorization", headers={"Authorization": "Bearer x" + TOKEN}),
    Case(
        "wrong signature",
        401,
        "x-hub-signature-256",
        headers={"X-Hub-Signature-256": signature(GENERIC, "other")},
        text="does not match",
    ),
    Case(
        "signature of another body",
        401,
        "x-hub-signature-256",
        headers={"X-Hub-Signature-256": signature(GENERIC + b" ")},
    ),
    Case(
        "github endpoint refuses a token",
        401,
        "x-hub-signature-256",
        WORKFLOW_RUN,
        path="/github",
        headers=BEARER,
        text="x-hub-signature-256: sha256=",
    ),
    Case(
        "stamped: no timestamp",
        401,
        "x-khook-timestamp",
        path="/stamped",
        headers={"X-Hub-Signature-256": signature(GENERIC)},
        text="missing x-khook-timestamp header",
    ),
    Case(
        "stamped: stale timestamp",
        401,
        "x-khook-timestamp",
        path="/stamped",
        headers={
            "X-Khook-Timestamp": "1000",
            "X-Hub-Signature-256": signature(GENERIC, prefix=b"1000."),
        },
        text="outside the replay window of 300 s",
    ),
    Case(
        "stamped: NaN timestamp",
        401,
        "x-khook-timestamp",
        path="/stamped",
        headers={
            "X-Khook-Timestamp": "nan",
            "X-Hub-Signature-256": signature(GENERIC, prefix=b"nan."),
        },
        text="Unix time",
    ),
    Case(
        "stamped: body-only signature",
        401,
        "x-hub-signature-256",
        path="/stamped",
        headers={"X-Khook-Timestamp": "{now}", "X-Hub-Signature-256": signature(GENERIC)},
    ),
    Case("broken json", 400, "body", b'{"type": "x",}', headers=BEARER, text="line 1 column 14"),
    Case("schema: missing type", 422, "type", b'{"message": "x"}', headers=BEARER),
    Case(
        "schema: typo",
        422,
        "serverity",
        b'{"type": "x", "serverity": "error"}',
        headers=BEARER,
        text="unknown field",
    ),
    Case(
        "schema: github without id",
        422,
        "workflow_run.id",
        WORKFLOW_RUN.replace(b'"id": 30433642,', b""),
        path="/github",
        headers={
            "X-Hub-Signature-256": signature(WORKFLOW_RUN.replace(b'"id": 30433642,', b"")),
            "X-GitHub-Event": "workflow_run",
        },
    ),
    Case("good with token", 200, None, headers=BEARER),
    Case("good with signature", 200, None, headers={"X-Hub-Signature-256": signature(GENERIC)}),
    Case(
        "good with the generic signature header",
        200,
        None,
        headers={"X-Signature-256": signature(GENERIC).upper().replace("SHA256=", "sha256=")},
    ),
    Case(
        "good github",
        200,
        None,
        WORKFLOW_RUN,
        path="/github",
        headers={"X-Hub-Signature-256": signature(WORKFLOW_RUN), "X-GitHub-Event": "workflow_run"},
    ),
    Case(
        "good stamped",
        200,
        None,
        path="/stamped",
        headers={"X-Khook-Timestamp": "{now}", "X-Hub-Signature-256": "{stamped}"},
    ),
]


def send(client: Any, case: Case) -> Any:
    now = str(int(time.time()))
    stamped = signature(case.body, prefix=now.encode() + b".")
    headers = {
        k: v.replace("{now}", now).replace("{stamped}", stamped) for k, v in case.headers.items()
    }
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    return client.open(case.path, method=case.method, data=case.body, headers=headers)


def check(reply: Any, case: Case) -> None:
    body = reply.get_json()
    assert reply.status_code == case.status, body
    assert reply.mimetype == "application/json"
    if case.status == 200:
        assert body["decisions"], body
        assert all(d["decision"] in ("dispatched", "duplicate") for d in body["decisions"])
        assert "prompt" not in json.dumps(body)
        return
    assert body["status"] == case.status
    assert body["field"] == case.field, body
    assert case.text in body["error"], body
    if case.status == 405:
        assert reply.headers["Allow"] == "POST"
    if case.status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def alertmanager_client(function_env: Callable[..., Any], http_client: Callable[[str], Any]) -> Any:
    function_env(plugins=SMALL_LIMIT_PLUGINS, KHOOK_ALERTMANAGER_TOKEN=TOKEN)
    return http_client("alertmanager")


@pytest.fixture
def webhook_client(function_env: Callable[..., Any], http_client: Callable[[str], Any]) -> Any:
    function_env(
        plugins=SMALL_LIMIT_PLUGINS,
        KHOOK_WEBHOOK_TOKEN=TOKEN,
        KHOOK_WEBHOOK_HMAC_SECRET=HMAC_SECRET,
    )
    return http_client("webhook")


@pytest.mark.parametrize("case", ALERTMANAGER_CASES, ids=str)
def test_alertmanager_requests(alertmanager_client: Any, case: Case) -> None:
    check(send(alertmanager_client, case), case)


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=str)
def test_webhook_requests(webhook_client: Any, case: Case) -> None:
    check(send(webhook_client, case), case)


def test_a_chunked_body_over_the_limit_is_cut_off_after_the_limit(webhook_client: Any) -> None:
    """Without a Content-Length the body is read until one byte past the limit, no further."""
    read: list[int] = []

    class Endless:
        def read(self, size: int = -1) -> bytes:
            read.append(size)
            return b" " * size

    environ = {"wsgi.input": Endless(), "wsgi.input_terminated": True}
    reply = webhook_client.post(
        "/tiny",
        headers={**BEARER, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides=environ,
    )
    assert reply.status_code == 413
    assert sum(read) <= 65 + 64 * 1024


def test_without_configured_credentials_every_request_is_refused(
    function_env: Callable[..., Any], http_client: Callable[[str], Any]
) -> None:
    function_env()
    reply = http_client("webhook").post(
        "/", data=GENERIC, content_type="application/json", headers=BEARER
    )
    assert reply.status_code == 401
    assert "no credentials configured" in reply.get_json()["error"]


def test_allow_unauthenticated_opens_an_endpoint_without_secrets(
    function_env: Callable[..., Any], http_client: Callable[[str], Any]
) -> None:
    function_env(KHOOK_ALERTMANAGER_ALLOW_UNAUTHENTICATED="true")
    reply = http_client("alertmanager").post("/", data=ALERTS, content_type="application/json")
    assert reply.status_code == 200
    assert reply.get_json()["counts"] == {"dispatched": 2}


def test_a_transient_failure_answers_503_so_the_sender_retries(
    function_env: Callable[..., Any],
    http_client: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    function_env(KHOOK_ALERTMANAGER_TOKEN=TOKEN)
    client = http_client("alertmanager")
    dispatcher = get_runtime().dispatcher
    real = dispatcher.dispatch
    outage = [True]

    def flaky(request: Any) -> Any:
        if outage[0]:
            raise TransientError("agent unreachable")
        return real(request)

    monkeypatch.setattr(dispatcher, "dispatch", flaky)
    reply = client.post("/", data=ALERTS, content_type="application/json", headers=BEARER)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == str(http.RETRY_AFTER_SECONDS)
    assert reply.get_json()["counts"] == {"failed:transient": 2}
    outage[0] = False  # the claims were released: the retry fires
    reply = client.post("/", data=ALERTS, content_type="application/json", headers=BEARER)
    assert reply.get_json()["counts"] == {"dispatched": 2}


def test_a_slow_first_dispatch_leaves_the_rest_of_the_group_to_the_retry(
    function_env: Callable[..., Any],
    http_client: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two alerts, and an agent so slow that the first dispatch spends the invocation's budget:
    the second is not started but answered retryable, and the retry fires only it."""
    function_env(KHOOK_ALERTMANAGER_TOKEN=TOKEN, KHOOK_INVOCATION_BUDGET="2")
    client = http_client("alertmanager")
    dispatcher = get_runtime().dispatcher
    real = dispatcher.dispatch
    budgets: list[float | None] = []

    def slow(request: Any) -> Any:
        budgets.append(request.time_budget)
        if len(budgets) == 1:
            time.sleep(1.2)  # leaves less than the minimum a dispatch is started with
        return real(request)

    monkeypatch.setattr(dispatcher, "dispatch", slow)
    first = client.post("/", data=ALERTS, content_type="application/json", headers=BEARER)
    assert first.status_code == 503
    assert first.get_json()["counts"] == {"dispatched": 1, "failed:transient": 1}
    retry = client.post("/", data=ALERTS, content_type="application/json", headers=BEARER)
    assert retry.get_json()["counts"] == {"dispatched": 1, "duplicate": 1}
    assert len(budgets) == 2
    assert budgets[0] is not None
    assert 0 < budgets[0] <= 2


def test_secrets_never_reach_the_event(webhook_client: Any) -> None:
    reply = webhook_client.post(
        "/",
        data=GENERIC,
        content_type="application/json",
        headers={**BEARER, "Cookie": "session=1"},
    )
    assert reply.status_code == 200
    [request] = get_runtime().dispatcher.requests  # type: ignore[attr-defined]
    dumped = request.event.model_dump_json()
    assert TOKEN not in dumped
    assert "session=1" not in dumped


@pytest.mark.parametrize(
    ("source", "prefix"),
    [("webhook", "KHOOK_WEBHOOK_"), ("my-source", "KHOOK_MY_SOURCE_"), ("x.y", "KHOOK_X_Y_")],
)
def test_each_source_reads_its_own_secrets(source: str, prefix: str) -> None:
    assert http.env_prefix(source) == prefix
