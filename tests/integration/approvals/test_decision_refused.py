"""A decision the agent does not take is recorded as ``failed: <why>``, never as ``sent``.
An answer that refuses it is final (sent once); only "not now" (429/5xx) is tried again, as for
every send (``dispatch/retry.py``).

The agent here is a loopback stand-in that answers each decision the way a broken or
refusing agent would (HTTP error, a JSON-RPC error, no JSON, no result object, nobody
listening); the real agent's acceptance is in ``test_hitl_loop.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import pytest

from khook_core.approvals import deciding
from khook_core.settings import Settings
from tests.support.stub_server import QuietHandler, serving

from ..state.test_approvals_contract import approval


class Agent(QuietHandler):
    """Answers every POST with ``answer`` (status, body bytes); keeps the JSON-RPC requests."""

    answer: ClassVar[tuple[int, bytes]] = (200, b"{}")
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"headers": dict(self.headers), "body": json.loads(body)})
        status, data = type(self).answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class Services:
    settings: Settings = field(
        default_factory=lambda: Settings.from_env({"KHOOK_DISPATCH_BACKOFF": "0.01"})
    )


@pytest.fixture
def agent() -> Iterator[str]:
    Agent.received = []
    with serving(Agent) as url:
        yield url


def send(endpoint: str) -> str:
    decided = replace(approval("1"), endpoint=endpoint)
    services: Any = Services()  # all deciding.send reads of a runtime: its settings
    return deciding.send(services, decided, {"decision_type": "approve"}, "approved")


RESULT = json.dumps({"jsonrpc": "2.0", "id": "khook-decision-1", "result": {"task": {}}})
REFUSALS = [
    ((400, b"no such extension"), "failed: HTTP 400: no such extension"),
    (
        (
            200,
            json.dumps(
                {"jsonrpc": "2.0", "id": "x", "error": {"code": -32602, "message": "bad decision"}}
            ).encode(),
        ),
        "failed: JSON-RPC error -32602: bad decision",
    ),
    (
        (
            200,
            json.dumps(
                {"jsonrpc": "2.0", "id": "x", "error": {"code": -32001, "message": "gone"}}
            ).encode(),
        ),
        "failed: task not found: gone",
    ),
    ((200, b"<html>proxy error</html>"), "failed: answer is not JSON"),
    ((200, b"[1, 2]"), "failed: answer is not a JSON-RPC object"),
    (
        (200, b'{"jsonrpc": "2.0", "id": "x", "result": "ok"}'),
        "failed: answer has no result object",
    ),
]


def test_an_accepted_decision_is_sent_once_on_the_paused_task(agent: str) -> None:
    Agent.answer = (200, RESULT.encode())
    assert send(agent) == "sent"
    [request] = Agent.received
    assert request["body"]["id"] == "khook-decision-1"
    assert request["body"]["method"] == "SendMessage"
    message = request["body"]["params"]["message"]
    assert (message["taskId"], message["contextId"]) == ("task-1", "ctx-1")
    assert request["headers"]["A2A-Extensions"]


@pytest.mark.parametrize(("answer", "recorded"), REFUSALS)
def test_a_refused_decision_is_recorded_failed_with_why_and_sent_once(
    agent: str, answer: tuple[int, bytes], recorded: str
) -> None:
    Agent.answer = answer
    assert send(agent).startswith(recorded)
    assert len(Agent.received) == 1  # the agent answered: nothing to try again


def test_an_agent_that_keeps_saying_not_now_is_a_failed_send_naming_its_answer(
    agent: str,
) -> None:
    Agent.answer = (503, b"overloaded")
    sent = send(agent)
    assert sent.startswith("failed: ")
    assert "HTTP 503: overloaded" in sent
    assert len(Agent.received) > 1  # "not now" is retried, within the send's budget


def test_an_agent_nobody_answers_for_is_a_failed_send_not_an_error() -> None:
    with serving(Agent) as url:
        pass  # the port is free again: nothing listens there
    assert send(url).startswith("failed: ")
