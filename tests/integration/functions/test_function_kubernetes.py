"""functions/kubernetes through the real functions-framework app, and the shared Pub/Sub helper.

In-process (``create_app(...).test_client()``), so every failure-rule branch is cheap to reach:
a forwarder message fires once and its redelivery is a duplicate; poison is acknowledged and
counted; a transient failure answers 500 so Pub/Sub redelivers. A subprocess proves the
function's imports stay light.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import InvalidEventError, TransientError
from khook_core.runtime import Runtime, get_runtime
from khook_core.settings import Settings
from khook_core.state.base import ClaimResult
from khook_core.state.memory import MemoryStateStore
from khook_core.transport import pubsub
from tests.support.configdir import restart_hook
from tests.support.forwarder import REPO
from tests.support.kube_api import FakeKubeApi

MAIN = REPO / "functions" / "kubernetes" / "main.py"
HOOK = restart_hook()
ATTRIBUTES = {
    "khook.source": "kubernetes",
    "khook.cluster": "prod-eu",
    "khook.api": "events.k8s.io/v1",
    "khook.namespace": "shop",
    "khook.reason": "BackOff",
    "khook.type": "Warning",
}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    (config / "hooks").mkdir(parents=True)
    for name in ("event-mappings.yaml", "plugins.yaml"):
        (config / name).write_text((REPO / "config" / name).read_text())
    (config / "hooks" / "shop.yaml").write_text(HOOK)
    return config


@pytest.fixture
def client(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, function_client: Callable[[str], Any]
) -> Any:
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("KHOOK_STATE", "memory")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    return function_client("kubernetes")


def push_body(
    data: bytes, message_id: str = "9311", attributes: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "attributes": ATTRIBUTES if attributes is None else attributes,
            "publishTime": "2026-01-05T10:31:13.120Z",
        },
        "subscription": "projects/p1/subscriptions/khook-kubernetes-push",
    }


def fresh_event(**fields: Any) -> dict[str, Any]:
    return FakeKubeApi().create(namespace="shop", **fields)


def dispatched() -> list[Any]:
    dispatcher = get_runtime().dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    return list(dispatcher.requests)


def test_a_forwarder_message_fires_once_and_its_redelivery_is_a_duplicate(client):
    body = push_body(json.dumps(fresh_event()).encode())

    first = client.post("/projects/p1/topics/khook-kubernetes", json=body)
    again = client.post("/projects/p1/topics/khook-kubernetes", json=body)

    assert (first.status_code, again.status_code) == (200, 200)
    [request] = dispatched()
    assert request.hook == "shop/shop-restarts"
    assert "web-0" in request.prompt
    assert request.event.metadata["cluster"] == "prod-eu"
    assert request.event.raw_ref == "pubsub:khook-kubernetes/9311"  # where it came from


def test_a_push_body_is_parsed_once_by_the_delivery_check_not_again_by_the_framework(
    client, monkeypatch: pytest.MonkeyPatch
):
    """The framework converts a push envelope from ``request.get_json()``: the guard's parse."""
    app = client.application
    parsed: list[Any] = []
    loads = app.json.loads

    def counting(s: Any, **kw: Any) -> Any:
        parsed.append(s)
        return loads(s, **kw)

    monkeypatch.setattr(app.json, "loads", counting)
    body = push_body(json.dumps(fresh_event()).encode())

    answer = client.post("/projects/p1/topics/khook-kubernetes", json=body)

    assert parsed == []
    assert (answer.status_code, answer.get_json()) == (200, {"status": 200, "acknowledged": True})
    [request] = dispatched()
    assert request.event.raw_ref == "pubsub:khook-kubernetes/9311"


def test_a_message_from_another_tool_without_attributes_is_accepted(client):
    body = push_body(json.dumps(fresh_event()).encode(), attributes={})

    assert client.post("/", json=body).status_code == 200
    assert len(dispatched()) == 1


def test_an_eventarc_binary_cloudevent_is_accepted(client):
    data = json.dumps(fresh_event()).encode()
    event = CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "id": "77",
            "source": "//pubsub.googleapis.com/projects/p1/topics/khook-kubernetes",
        },
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": "77",
                "attributes": ATTRIBUTES,
            }
        },
    )
    headers, body = to_binary(event)

    assert client.post("/", headers=headers, data=body).status_code == 200
    assert len(dispatched()) == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'{"kind": "Event", "regarding": "not-an-object"}',
        b"\xff\xfe",
    ],
)
def test_poison_is_acknowledged_counted_and_logged_with_its_message_id(
    client,
    payload: bytes,
    caplog: pytest.LogCaptureFixture,
):
    before = pubsub.STATS.invalid

    reply = client.post("/", json=push_body(payload, message_id="poison-1"))

    assert reply.status_code == 200  # acknowledged: it must never loop
    assert pubsub.STATS.invalid == before + 1
    assert dispatched() == []
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "poison-1" in warning.getMessage()
    assert getattr(warning, "invalid_messages") == pubsub.STATS.invalid  # noqa: B009


def test_data_that_is_not_base64_is_acknowledged(client):
    body = push_body(b"x")
    body["message"]["data"] = "%%%not-base64%%%"

    assert client.post("/", json=body).status_code == 200


class UnavailableStore(MemoryStateStore):
    """A state store that is down: every claim is a transient failure."""

    def claim(self, **_: Any) -> bool:
        raise TransientError("state store unreachable (test)")

    def claim_firing(self, **_: Any) -> ClaimResult:
        raise TransientError("state store unreachable (test)")


@pytest.fixture
def unavailable_runtime(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    runtime = Runtime.build(
        Settings(config_dir=config_dir, dispatch="dry-run"), store=UnavailableStore()
    )
    monkeypatch.setattr("khook_core.runtime.get_runtime", lambda: runtime)
    return runtime


def test_a_transient_failure_answers_500_so_pubsub_redelivers(client, unavailable_runtime):
    reply = client.post("/", json=push_body(json.dumps(fresh_event()).encode()))

    assert reply.status_code == 500
    assert reply.headers.get("X-Google-Status") == "crash"


def test_the_helper_raises_transient_and_returns_decisions(config_dir: Path):
    runtime = Runtime.build(Settings(config_dir=config_dir, dispatch="dry-run", state="memory"))
    event = CloudEvent(
        {"type": "t", "source": "s", "id": "1"},
        {
            "message": {
                "data": base64.b64encode(json.dumps(fresh_event()).encode()).decode(),
                "messageId": "1",
            }
        },
    )

    decisions = pubsub.handle_pubsub("kubernetes", event, runtime=runtime)
    assert [d.decision for d in decisions] == ["dispatched"]

    broken = Runtime.build(
        Settings(config_dir=config_dir, dispatch="dry-run"), store=UnavailableStore()
    )
    with pytest.raises(TransientError, match="message 1"):
        pubsub.handle_pubsub("kubernetes", event, runtime=broken)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"nomessage": {}}, "data.message"),
        ({"message": {"data": 5}}, "message.data"),
        ({"message": {"data": "", "attributes": {"a": 1}}}, "message.attributes"),
        ("not json", "data"),
    ],
)
def test_decoding_names_the_bad_field(data: Any, field: str):
    event = CloudEvent({"type": "t", "source": "s", "id": "1"}, data)

    with pytest.raises(InvalidEventError) as caught:
        pubsub.decode_message(event)

    assert caught.value.field == field


def test_decoding_reads_the_four_fields_functions_framework_keeps():
    event = CloudEvent(
        {"type": "t", "source": "s", "id": "ce-1"},
        {
            "message": {
                "data": base64.b64encode(b"{}").decode(),
                "attributes": {"k": "v"},
                "messageId": "m-1",
                "publishTime": "2026-01-05T10:31:13.120Z",
            }
        },
    )

    message = pubsub.decode_message(event)

    assert message == pubsub.PubSubMessage(b"{}", {"k": "v"}, "m-1", "2026-01-05T10:31:13.120Z")


def test_parse_text_is_there_for_sources_that_are_not_json():
    assert pubsub.parse_text("héllo".encode()) == "héllo"
    with pytest.raises(InvalidEventError):
        pubsub.parse_text(b"\xff")


IMPORT_PROBE = """
import base64, json, sys
import functions_framework
app = functions_framework.create_app("handle", sys.argv[1], "cloudevent").test_client()
event = json.loads(sys.argv[2])
body = {"message": {"data": base64.b64encode(json.dumps(event).encode()).decode(),
                    "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}
assert app.post("/", json=body).status_code == 200
heavy = sorted(m for m in sys.modules if m == "kubernetes" or m.startswith(
    ("kubernetes.", "google.cloud.pubsub", "google.pubsub", "grpc")))
print(json.dumps(heavy))
"""


def test_the_function_imports_neither_kubernetes_nor_the_pubsub_client(config_dir: Path):
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "KHOOK_STATE": "memory",
        "KHOOK_DISPATCH": "dry-run",
        "KHOOK_CONFIG_DIR": str(config_dir),
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(MAIN), json.dumps(fresh_event())],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_function_is_a_few_lines_of_glue():
    source = MAIN.read_text()
    assert "handle_pubsub(" in source
    assert len([line for line in source.splitlines() if line.strip()]) < 30
