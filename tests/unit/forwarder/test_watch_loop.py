"""The thin loop around ``EventWatcher.step``: it backs off, resets, survives errors, stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.kube import EventsEndpoint
from khook_core.forwarder.kube_http import ApiException
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.watching import Outcome, WatchState, run_watch_loop


class ScriptedWatcher:
    """Stands in for EventWatcher at the loop's layer: each step returns or raises the next item."""

    def __init__(self, steps: list[Outcome | Exception]) -> None:
        self._steps: Iterator[Outcome | Exception] = iter(steps)
        self.endpoint = EventsEndpoint("events.k8s.io/v1", None, self._must_not_be_called)
        self.calls = 0

    @staticmethod
    def _must_not_be_called(**_: Any) -> None:
        raise AssertionError("the loop must not call the API itself")

    def step(self, state: WatchState) -> Outcome:
        self.calls += 1
        item = next(self._steps)
        if isinstance(item, Exception):
            raise item
        return item


class RecordingStop(threading.Event):
    """A stop event that records the backoff waits instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        return self.is_set()


def run(
    steps: list[Outcome | Exception],
) -> tuple[ScriptedWatcher, RecordingStop, ForwarderMetrics]:
    watcher, stop, metrics = ScriptedWatcher(steps), RecordingStop(), ForwarderMetrics()
    run_watch_loop(
        watcher,  # type: ignore[arg-type]
        WatchState(),
        stop=stop,
        backoff=Backoff(1.0, 8.0),
        metrics=metrics,
        _iterations=len(steps),
    )
    return watcher, stop, metrics


def test_api_errors_back_off_exponentially_and_a_good_watch_resets_the_schedule():
    _, stop, metrics = run(
        [
            ApiException(status=500),
            ApiException(status=503),
            ConnectionResetError("reset"),
            Outcome.WATCHED,
            ApiException(status=500),
        ]
    )

    assert metrics.api_errors == 4
    first, second, third, after_reset = stop.waits
    assert 0.5 <= first <= 1
    assert 1 <= second <= 2
    assert 2 <= third <= 4
    assert 0.5 <= after_reset <= 1


def test_lists_and_normal_watch_ends_do_not_wait():
    _, stop, _ = run([Outcome.LISTED, Outcome.WATCHED, Outcome.WATCHED])

    assert stop.waits == []


def test_empty_and_expired_watches_back_off_before_the_next_call():
    _, stop, _ = run([Outcome.EMPTY, Outcome.EXPIRED, Outcome.LISTED, Outcome.EXPIRED])

    assert len(stop.waits) == 3
    assert stop.waits[2] > stop.waits[0] / 2  # still escalating: no watch worked in between


def test_a_stopped_step_ends_the_loop():
    watcher, _, _ = run([Outcome.WATCHED, Outcome.STOPPED, Outcome.WATCHED])

    assert watcher.calls == 2


def test_the_loop_does_not_start_once_stopped():
    watcher, stop = ScriptedWatcher([]), RecordingStop()
    stop.set()

    run_watch_loop(
        watcher,  # type: ignore[arg-type]
        WatchState(),
        stop=stop,
        backoff=Backoff(1, 2),
        metrics=ForwarderMetrics(),
    )

    assert watcher.calls == 0


@pytest.mark.parametrize("error", [ValueError("bad JSON"), KeyError("object")])
def test_unexpected_errors_are_survived_too(error: Exception):
    _, stop, metrics = run([error, Outcome.WATCHED])

    assert metrics.api_errors == 1
    assert len(stop.waits) == 1
