"""The assembled forwarder's probes and metrics, over HTTP, against the test API server."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from khook_core.forwarder.app import Forwarder
from khook_core.forwarder.config import ForwarderSettings
from tests.support.forwarder import (
    REPO,
    TOPIC,
    RecordingClient,
    StallingKubeApi,
    started_forwarders,
)
from tests.support.kube_api import Script
from tests.support.pubsub import free_port


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def forwarder() -> Iterator[Callable[..., tuple[Forwarder, RecordingClient]]]:
    with started_forwarders() as start_one:

        def start(url: str, **settings: Any) -> tuple[Forwarder, RecordingClient]:
            client = RecordingClient()
            options: dict[str, Any] = {
                "kube_api_url": url,
                "topic": TOPIC,
                "config_dir": REPO / "config",
                "port": 0,
                "host": "127.0.0.1",
                "backoff_initial_seconds": 0.05,
                "backoff_max_seconds": 0.2,
                "watch_timeout_seconds": 5,
                **settings,
            }
            return start_one(ForwarderSettings(**options), client), client

        yield start


@pytest.fixture
def stalling_api() -> Iterator[Callable[[int], StallingKubeApi]]:
    servers: list[StallingKubeApi] = []

    def start(stalls: int) -> StallingKubeApi:
        server = StallingKubeApi(stalls=stalls)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def healthz_while(port: int, seconds: float) -> set[int]:
    """Every /healthz status seen while polling for ``seconds``, the way a kubelet would."""
    seen: set[int] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.add(get(port, "/healthz")[0])
        time.sleep(0.05)
    return seen


def test_ready_after_the_first_list_and_alive_through_a_quiet_cluster(
    forwarder, kube_api, wait_until
):
    kube_api.script("hold")
    fwd, _ = forwarder(kube_api.url, dead_after_seconds=4, watch_timeout_seconds=300)

    wait_until(fwd.ready, what="first list")
    assert get(fwd.probes.port, "/readyz") == (200, "ready\n")
    # No event for longer than dead_after: each watch ends with a bookmark after a quarter of
    # it and resumes, so a quiet cluster keeps making contact and is never declared dead.
    assert healthz_while(fwd.probes.port, 5) == {200}
    watches = kube_api.watch_requests()
    assert len(watches) >= 4
    assert {w.query["timeoutSeconds"] for w in watches} == {"1"}
    assert fwd.metrics.api_errors == 0


def test_a_stuck_watch_is_cut_and_resumed_before_liveness_fails(
    forwarder, stalling_api, wait_until
):
    api = stalling_api(1)  # the first watch: open and silent forever, timeoutSeconds ignored
    fwd, _ = forwarder(api.url, dead_after_seconds=4, watch_timeout_seconds=300)
    wait_until(fwd.ready, what="first list")
    listed_at = fwd.states[0].resource_version

    wait_until(lambda: len(api.watch_requests()) >= 2, timeout=4, what="the stuck watch cut")
    api.create("BackOff")

    assert healthz_while(fwd.probes.port, 2) == {200}
    [held] = api.stalled
    assert held < 4 / 2 + 0.5
    first, second = api.watch_requests()[:2]
    assert first.query["resourceVersion"] == second.query["resourceVersion"] == listed_at
    assert fwd.metrics.api_errors == 1
    assert fwd.metrics.forwarded == 1


def test_a_watch_that_stays_stuck_fails_liveness_after_dead_after(
    forwarder, stalling_api, wait_until
):
    api = stalling_api(1000)  # every watch call wedges
    fwd, _ = forwarder(api.url, dead_after_seconds=2)
    wait_until(fwd.ready, what="first list")
    listed = time.monotonic()
    assert get(fwd.probes.port, "/healthz") == (200, "watch alive\n")

    wait_until(
        lambda: get(fwd.probes.port, "/healthz") == (503, "watch dead\n"),
        timeout=3,
        what="liveness to fail",
    )

    assert time.monotonic() - listed >= 2 - 0.2  # not before the limit
    assert len(api.watch_requests()) >= 1


def test_not_ready_and_finally_not_alive_while_the_api_is_unreachable(forwarder, wait_until):
    fwd, _ = forwarder(f"http://127.0.0.1:{free_port()}", dead_after_seconds=0.3)

    status, body = get(fwd.probes.port, "/readyz")
    assert status == 503
    assert body.startswith("first list not done")
    wait_until(
        lambda: "Connection refused" in get(fwd.probes.port, "/readyz")[1],
        timeout=10,
        what="readiness to say why",
    )
    wait_until(
        lambda: get(fwd.probes.port, "/healthz")[0] == 503, timeout=10, what="liveness to fail"
    )
    assert fwd.metrics.api_errors >= 1
    assert get(fwd.probes.port, "/nope")[0] == 404


def test_metrics_count_what_was_seen_forwarded_and_filtered(forwarder, kube_api, wait_until):
    kube_api.create("BackOff")
    kube_api.create("Pulled", type_="Normal")
    kube_api.script(Script("close", after=1), "gone")
    fwd, client = forwarder(kube_api.url)
    wait_until(fwd.ready)
    kube_api.create("Unhealthy", "Readiness probe failed: 503", object_name="web-1")

    wait_until(lambda: fwd.metrics.relists >= 1 and len(client.accepted) >= 2)
    status, text = get(fwd.probes.port, "/metrics")

    assert status == 200
    assert 'khook_forwarder_events_filtered_total{reason="normal"}' in text
    assert "khook_forwarder_relists_total 1" in text
    assert "khook_forwarder_watch_restarts_total" in text
    assert "khook_forwarder_queue_depth 0" in text
    assert 'khook_forwarder_events_seen_total{type="ADDED"}' in text
