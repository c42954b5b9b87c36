"""functions/sweep through the real functions-framework app: every tick is acknowledged.

A tick carries nothing and the next one is the retry, so whatever happens (nothing held, a
store that fails, a message that is not even JSON) the answer is 2xx: a redelivered tick would
only sweep again. The whole chain with the emulator and an agent is in tests/e2e.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.runtime import get_runtime
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary
from tests.support.configdir import make_config, restart_hook
from tests.support.k8s_events import core_event

TOPIC = "/projects/p1/topics/khook-sweep"


@pytest.fixture
def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function_client: Callable[[str], Any]
) -> Any:
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(make_config(tmp_path, restart_hook())))
    monkeypatch.setenv("KHOOK_STATE", f"sqlite:{tmp_path / 'state.db'}")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    return function_client("sweep")


def tick(data: bytes = b'{"tick": "sweep"}', message_id: str = "41") -> dict[str, Any]:
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": message_id},
        "subscription": "projects/p1/subscriptions/khook-sweep-push",
    }


def hold_one_restart() -> None:
    """A backlog as the pipeline leaves it: one held pod restart of hook shop/shop-restarts."""
    runtime = get_runtime()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = core_event(name="web-0", namespace="shop", last=stamp)
    [event] = runtime.config.sources.get("kubernetes").normalize(raw, {})
    runtime.store.add_backlog(
        key=BacklogKey(BacklogKind.BUDGET, "shop/shop-restarts|pod-restart"),
        backlog=Backlog(
            Summary(
                count=1,
                first=event.timestamp,
                last=event.timestamp,
                resources=(event.resource.ref(),),
            ),
            hook="shop/shop-restarts",
            event=event.model_dump_json(),
        ),
    )


def test_a_tick_runs_what_is_held_and_the_next_finds_nothing(client):
    hold_one_restart()

    first = client.post(TOPIC, json=tick(message_id="1"))
    second = client.post(TOPIC, json=tick(message_id="2"))

    assert (first.status_code, second.status_code) == (200, 200)
    dispatcher = get_runtime().dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    [request] = dispatcher.requests
    assert request.hook == "shop/shop-restarts"
    assert "held back by storm control" in request.prompt


@pytest.mark.parametrize("data", [b"", b"not json", b"\xff\xfe"], ids=["empty", "text", "binary"])
def test_a_tick_is_acknowledged_whatever_it_carries(client, data: bytes):
    assert client.post(TOPIC, json=tick(data)).status_code == 200


def test_a_failing_store_is_acknowledged_and_left_to_the_next_tick(client, caplog):
    get_runtime().store.close()  # every call now fails as an unreachable store would

    with caplog.at_level(logging.WARNING, logger="khook_core.transport.tick"):
        answer = client.post(TOPIC, json=tick())

    assert answer.status_code == 200
    assert "state store unavailable, next tick retries" in caplog.text
