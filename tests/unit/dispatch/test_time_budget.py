"""How ``DispatchRequest.time_budget`` bounds a whole dispatch, on a fake clock (no network)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from khook_core.dispatch.a2a import A2ADispatcher
from khook_core.dispatch.base import Target
from khook_core.dispatch.webhook import WebhookDispatcher
from khook_core.errors import TransientError
from tests.support.dispatch import fast_settings, make_request

AGENT = Target("agent", name="k8s-agent", namespace="kagent")
SUBMITTED = {
    "jsonrpc": "2.0",
    "id": "1",
    "result": {"task": {"id": "t-1", "status": {"state": "TASK_STATE_SUBMITTED"}}},
}
CARD_1_0 = {"supportedInterfaces": [{"protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A MockTransport handler: each request costs ``cost`` fake seconds; timeouts are kept."""

    def __init__(self, clock: FakeClock, cost: float = 0.5) -> None:
        self.clock = clock
        self.cost = cost
        self.calls: list[tuple[str, str, dict[str, float]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path, request.extensions["timeout"]))
        self.clock.now += self.cost
        if request.url.path.endswith("agent-card.json"):
            return httpx.Response(200, json=CARD_1_0)
        if request.url.path == "/api/sessions":
            return httpx.Response(201, json={"error": False, "data": {"id": "s-1"}})
        if request.url.host == "sink.test":
            return httpx.Response(204)
        return httpx.Response(200, json=SUBMITTED)


def a2a_for(recorder: Recorder, **settings: Any) -> A2ADispatcher:
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    return A2ADispatcher(
        fast_settings(kagent_api_url="http://kagent.test", **settings),
        client=client,
        sleep=recorder.clock.sleep,
        clock=recorder.clock,
    )


def test_card_read_session_and_send_share_the_invocations_budget() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    dispatcher = a2a_for(recorder, kagent_sessions=True, kagent_api_timeout=30.0)
    assert dispatcher.dispatch(make_request(AGENT, time_budget=2.0)).task_id == "t-1"
    [session, card, send] = recorder.calls
    assert session[1] == "/api/sessions"
    assert card[1].endswith("agent-card.json")
    assert session[2]["read"] == pytest.approx(2.0)
    assert card[2]["read"] == pytest.approx(0.75)  # a hint: at most half of the 1.5 s left
    assert send[2]["read"] == pytest.approx(1.0)  # 2.0 - session - card


@pytest.mark.parametrize(
    ("time_budget", "dispatch_budget", "first_read_timeout"),
    [(None, 3.0, 3.0), (8.0, 3.0, 3.0), (2.0, 45.0, 2.0)],
)
def test_the_smaller_of_time_budget_and_dispatch_budget_applies(
    time_budget: float | None, dispatch_budget: float, first_read_timeout: float
) -> None:
    clock = FakeClock()
    recorder = Recorder(clock, cost=0.0)
    dispatcher = a2a_for(
        recorder, a2a_version="1.0", kagent_api_timeout=30.0, dispatch_budget=dispatch_budget
    )
    dispatcher.dispatch(make_request(AGENT, time_budget=time_budget))
    [send] = recorder.calls
    assert send[2]["read"] == pytest.approx(first_read_timeout)


def test_retries_stop_at_the_time_budget() -> None:
    clock = FakeClock()
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(clock.now)
        clock.now += 0.4
        return httpx.Response(503, text="busy")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    dispatcher = WebhookDispatcher(
        fast_settings(dispatch_retries=10, dispatch_backoff=0.2, dispatch_max_backoff=0.2),
        client=client,
        sleep=clock.sleep,
        clock=clock,
    )
    target = Target("webhook", url="http://sink.test/in", options={"url": "http://sink.test/in"})
    with pytest.raises(TransientError, match="HTTP 503"):
        dispatcher.dispatch(make_request(target, time_budget=1.0))
    assert clock.now - 100.0 <= 1.0 + 1e-9
    assert len(seen) == 2  # 0.4 + ≤0.2 wait + 0.4 leaves no room for a third


def test_a_budget_below_one_attempt_sends_nothing() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    dispatcher = WebhookDispatcher(fast_settings(), client=client)
    target = Target("webhook", url="http://sink.test/in", options={"url": "http://sink.test/in"})
    with pytest.raises(TransientError, match="time budget"):
        dispatcher.dispatch(make_request(target, time_budget=0.01))
    assert calls == []
