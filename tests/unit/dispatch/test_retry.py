"""Retry rules of every dispatcher, driven through httpx's MockTransport (no network)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from khook_core.dispatch.retry import Deadline, RetryPolicy, Sender, error_text, retry_after
from khook_core.errors import DispatchError, TransientError

URL = "http://agent.test/api/a2a/kagent/k8s-agent/"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def sender_for(
    handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock, retries: int = 2
) -> Sender:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return Sender(
        client, RetryPolicy(retries=retries, backoff=0.1, max_backoff=1.0), sleep=clock.sleep
    )


def scripted(
    *answers: int | Exception,
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text=f"status {answer}")

    return handler, seen


def send(
    sender: Sender, clock: FakeClock, *, idempotent: bool = False, budget: float = 30.0
) -> httpx.Response:
    return sender.send(
        "POST",
        URL,
        what="agent kagent/k8s-agent",
        content=b"{}",
        deadline=Deadline(budget, clock),
        idempotent=idempotent,
    )


def test_server_errors_are_retried_until_a_success() -> None:
    clock = FakeClock()
    handler, seen = scripted(500, 502, 200)
    response = send(sender_for(handler, clock), clock)
    assert response.status_code == 200
    assert len(seen) == 3
    assert len(clock.sleeps) == 2
    assert 0.05 <= clock.sleeps[0] <= 0.1  # equal jitter: half fixed, half random
    assert 0.1 <= clock.sleeps[1] <= 0.2


def test_client_errors_are_returned_without_retry() -> None:
    clock = FakeClock()
    handler, seen = scripted(400)
    assert send(sender_for(handler, clock), clock).status_code == 400
    assert len(seen) == 1
    assert clock.sleeps == []


def test_exhausted_retries_raise_transient_error_naming_target_and_last_status() -> None:
    clock = FakeClock()
    handler, seen = scripted(503, 503, 503)
    with pytest.raises(
        TransientError,
        match=r"agent kagent/k8s-agent: HTTP 503: status 503 "
        r"\(after 3 attempt\(s\)\)",
    ):
        send(sender_for(handler, clock), clock)
    assert len(seen) == 3


def test_connection_errors_are_retried_and_chained() -> None:
    clock = FakeClock()
    refused = httpx.ConnectError("connection refused")
    handler, seen = scripted(refused, refused, refused)
    with pytest.raises(TransientError, match="ConnectError: connection refused") as info:
        send(sender_for(handler, clock), clock)
    assert info.value.__cause__ is refused
    assert len(seen) == 3


def test_a_read_timeout_is_not_repeated_for_a_non_idempotent_send() -> None:
    clock = FakeClock()
    handler, seen = scripted(httpx.ReadTimeout("timed out"), 200)
    with pytest.raises(TransientError, match="may have arrived"):
        send(sender_for(handler, clock), clock)
    assert len(seen) == 1


def test_a_read_timeout_is_retried_for_an_idempotent_send() -> None:
    clock = FakeClock()
    handler, seen = scripted(httpx.ReadTimeout("timed out"), 200)
    assert send(sender_for(handler, clock), clock, idempotent=True).status_code == 200
    assert len(seen) == 2


def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, headers={"Retry-After": "3"}, text="slow down")
        return httpx.Response(200)

    assert send(sender_for(handler, clock), clock).status_code == 200
    assert clock.sleeps == [3.0]


def test_no_retry_is_started_that_the_budget_cannot_hold() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "120"})

    with pytest.raises(TransientError, match="no time left for a retry"):
        send(sender_for(handler, clock), clock, budget=10.0)
    assert clock.sleeps == []


def test_attempt_timeouts_shrink_to_the_remaining_budget() -> None:
    clock = FakeClock()
    timeouts: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        clock.now += 4.0
        return httpx.Response(500)

    with pytest.raises(TransientError):
        send(sender_for(handler, clock, retries=5), clock, budget=10.0)
    assert timeouts[0]["read"] == 10.0
    assert timeouts[1]["read"] < 6.0


def test_an_unsupported_url_is_a_permanent_error() -> None:
    clock = FakeClock()
    client = httpx.Client()
    sender = Sender(client, RetryPolicy(), sleep=clock.sleep)
    with pytest.raises(DispatchError, match="check the URL"):
        sender.send(
            "POST",
            "ftp://agent.test/",
            what="agent x",
            deadline=Deadline(5, clock),
            idempotent=False,
        )


def test_error_text_is_collapsed_and_capped() -> None:
    response = httpx.Response(400, text="line one\n\n   line two " + "x" * 1000)
    text = error_text(response)
    assert text.startswith("line one line two x")
    assert len(text) == 300


def test_retry_after_reads_http_dates() -> None:
    from datetime import UTC, datetime

    response = httpx.Response(503, headers={"Retry-After": "Mon, 05 Jan 2026 10:31:42 GMT"})
    assert retry_after(response, lambda: datetime(2026, 1, 5, 10, 31, 12, tzinfo=UTC)) == 30.0
    assert (
        retry_after(httpx.Response(503, headers={"Retry-After": "soon"}), lambda: datetime.now(UTC))
        is None
    )


def test_the_https_transport_is_built_on_first_use_only():
    import httpx

    from khook_core.dispatch.retry import LazyTransport

    built: list[int] = []

    def factory() -> httpx.BaseTransport:
        built.append(1)
        return httpx.MockTransport(lambda request: httpx.Response(204))

    lazy = LazyTransport(factory)
    client = httpx.Client(mounts={"https://": lazy})
    assert built == []  # creating the client loads no TLS context
    assert client.get("https://agent.example/").status_code == 204
    assert client.get("https://agent.example/").status_code == 204
    assert built == [1]
    client.close()
