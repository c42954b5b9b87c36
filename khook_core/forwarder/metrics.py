"""Counters of the forwarder, rendered in the Prometheus text format.

A dozen numbers do not justify a ``prometheus_client`` dependency: this module keeps them behind
one lock and writes exposition format 0.0.4 by hand. Every drop path has a counter with a
reason, so nothing disappears silently.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

PREFIX = "khook_forwarder_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ForwarderMetrics:
    """Thread-safe counters; the watch threads, the publisher and the HTTP server share one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._started = clock()
        self.seen: Counter[str] = Counter()
        self.filtered: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.forwarded = 0
        self.published = 0
        self.publish_errors = 0
        self.api_errors = 0
        self.watch_restarts = 0
        self.relists = 0
        self._last_event: float | None = None
        self.queue_depth: Callable[[], int] = lambda: 0

    def event_seen(self, kind: str) -> None:
        with self._lock:
            self.seen[kind] += 1
            self._last_event = self._clock()

    def event_filtered(self, reason: str) -> None:
        with self._lock:
            self.filtered[reason] += 1

    def event_forwarded(self) -> None:
        with self._lock:
            self.forwarded += 1

    def messages_published(self, count: int) -> None:
        with self._lock:
            self.published += count

    def publish_failed(self) -> None:
        with self._lock:
            self.publish_errors += 1

    def messages_dropped(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    def api_error(self) -> None:
        with self._lock:
            self.api_errors += 1

    def watch_restarted(self) -> None:
        with self._lock:
            self.watch_restarts += 1

    def relisted(self) -> None:
        with self._lock:
            self.relists += 1

    def last_event_age(self) -> float:
        """Seconds since the last event arrived (since start-up when none has)."""
        with self._lock:
            since = self._last_event if self._last_event is not None else self._started
            return max(0.0, self._clock() - since)

    def render(self) -> str:
        """The exposition text served at /metrics."""
        age = self.last_event_age()
        depth = self.queue_depth()
        with self._lock:
            families: list[tuple[str, str, str, list[tuple[str, float]]]] = [
                (
                    "events_seen_total",
                    "counter",
                    "Kubernetes Events received, by watch event type",
                    _labelled("type", self.seen),
                ),
                (
                    "events_forwarded_total",
                    "counter",
                    "Events accepted for publishing",
                    [("", self.forwarded)],
                ),
                (
                    "events_filtered_total",
                    "counter",
                    "Events not forwarded, by reason",
                    _labelled("reason", self.filtered),
                ),
                (
                    "messages_published_total",
                    "counter",
                    "Messages Pub/Sub acknowledged",
                    [("", self.published)],
                ),
                (
                    "publish_errors_total",
                    "counter",
                    "Failed publish attempts (retried)",
                    [("", self.publish_errors)],
                ),
                (
                    "messages_dropped_total",
                    "counter",
                    "Messages given up on, by reason",
                    _labelled("reason", self.dropped),
                ),
                ("queue_depth", "gauge", "Messages waiting to be published", [("", depth)]),
                (
                    "api_errors_total",
                    "counter",
                    "Kubernetes API errors (backed off)",
                    [("", self.api_errors)],
                ),
                (
                    "watch_restarts_total",
                    "counter",
                    "Watches resumed from the last resourceVersion",
                    [("", self.watch_restarts)],
                ),
                (
                    "relists_total",
                    "counter",
                    "Re-lists after an expired resourceVersion",
                    [("", self.relists)],
                ),
                (
                    "last_event_age_seconds",
                    "gauge",
                    "Seconds since the last event arrived",
                    [("", round(age, 3))],
                ),
            ]
        lines: list[str] = []
        for name, kind, help_text, samples in families:
            lines.append(f"# HELP {PREFIX}{name} {help_text}")
            lines.append(f"# TYPE {PREFIX}{name} {kind}")
            lines.extend(f"{PREFIX}{name}{labels} {_number(value)}" for labels, value in samples)
        return "\n".join(lines) + "\n"


def _labelled(label: str, counts: Counter[str]) -> list[tuple[str, float]]:
    return [(f'{{{label}="{_escape(key)}"}}', value) for key, value in sorted(counts.items())]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
