"""The forwarder against a real kube-apiserver and etcd: the promises a real server tests.

A lagging forwarder whose watch expires (publishing stalled, or the process paused, while
3,000 Events arrive and etcd is compacted past its resourceVersion) publishes every Event
exactly once, with the watch cache on and off; a quiet spell past compaction republishes
nothing; an API server restart and a ``kill -9`` lose nothing; a continue token that expires
mid-list restarts the list once without re-sending. The scripted server in ``kube_api`` stays
for the faults a real server will not produce on demand.
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from khook_core.event import utcnow
from khook_core.forwarder import kube as kube_client
from khook_core.forwarder.app import Forwarder
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.filtering import Outbound
from khook_core.forwarder.kube import EventsEndpoint, RawWatch
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.publishing import PublishClient, pubsub_client
from khook_core.forwarder.watching import ALREADY_SEEN, EventWatcher, WatchState, WatchTimings
from tests.support.forwarder import REPO, ForwarderProcess, make_filter, started_forwarders
from tests.support.kube_real import RealKube, create_events, new_namespace, running_kube
from tests.support.pubsub import PubSubEmulator, Received

LAGGED = 3000
FAST: dict[str, Any] = {
    "backoff_initial_seconds": 0.05,
    "backoff_max_seconds": 0.5,
    "port": 0,
    "host": "127.0.0.1",
    "config_dir": REPO / "config",
    "cluster": "real",
    "batch_latency_seconds": 0.01,
    "publish_timeout_seconds": 5.0,
    "batch_size": 50,
    "dead_after_seconds": 8.0,
    # Shrunk so that seconds of lag exceed it as minutes do in production: a re-list anchored
    # on the wall clock of processing would lose what the watch had not delivered.
    "relist_overlap_seconds": 1.0,
}


@pytest.fixture(scope="module", params=["watch-cache", "no-watch-cache"])
def kube(request: pytest.FixtureRequest, real_kube: RealKube) -> Iterator[RealKube]:
    """The session's API server, and one started with ``--watch-cache=false``."""
    real_kube.require_faults()
    if request.param == "watch-cache":
        yield real_kube
        return
    with running_kube("--watch-cache=false") as uncached:
        yield uncached


class GatedClient:
    """The real Pub/Sub publisher, stalled while the gate is closed (a Pub/Sub that hangs)."""

    def __init__(self, inner: PublishClient) -> None:
        self.inner = inner
        self.gate = threading.Event()

    def publish(
        self, topic: str, messages: Sequence[Outbound], timeout: float
    ) -> Sequence[BaseException | None]:
        self.gate.wait()
        return self.inner.publish(topic, messages, timeout)

    def stop(self) -> None:
        self.gate.set()
        self.inner.stop()


@pytest.fixture
def forwarder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Forwarder]]:
    with started_forwarders() as start_one:

        def start(kube: RealKube, **settings: Any) -> Forwarder:
            client = settings.pop("publish_client", None)
            return start_one(
                ForwarderSettings(**{**FAST, "kubeconfig": str(kube.kubeconfig), **settings}),
                client,
            )

        yield start


def uids(messages: list[Received]) -> Counter[str]:
    return Counter(m.json()["metadata"]["uid"] for m in messages)


def topic_and_subscription(emulator: PubSubEmulator) -> tuple[str, str]:
    topic = emulator.create_topic()
    return emulator.topic_path(topic), emulator.create_subscription(topic)


def test_a_stalled_publisher_then_410_publishes_every_event_once(
    kube: RealKube,
    pubsub_emulator: PubSubEmulator,
    forwarder: Callable[..., Forwarder],
    wait_until: Callable[..., None],
):
    namespace = new_namespace(kube)
    topic, subscription = topic_and_subscription(pubsub_emulator)
    settings = ForwarderSettings(**FAST, emulator_host=pubsub_emulator.host, topic=topic)
    gated = GatedClient(pubsub_client(settings))
    fwd = forwarder(
        kube,
        namespaces=namespace,
        emulator_host=pubsub_emulator.host,
        topic=topic,
        publish_client=gated,
    )
    wait_until(fwd.ready, what="the first list")

    created = create_events(kube, namespace, range(LAGGED))
    wait_until(lambda: len(fwd.publisher.queue) > 0, what="the watch to be held back")
    behind = fwd.metrics.forwarded
    kube.compact()
    gated.gate.set()

    got = uids(pubsub_emulator.pull_until(subscription, LAGGED, timeout=90, quiet=0.5))

    assert behind < LAGGED  # the watch really was behind when etcd compacted
    assert set(got) == set(created)
    assert max(got.values()) == 1
    wait_until(lambda: fwd.metrics.relists >= 1, what="the 410 and re-list")
    assert fwd.metrics.filtered["stale"] == 0
    assert sum(fwd.metrics.dropped.values()) == 0


def test_a_paused_process_then_410_publishes_every_event_once(
    kube: RealKube,
    pubsub_emulator: PubSubEmulator,
    tmp_path: Path,
    wait_until: Callable[..., None],
):
    namespace = new_namespace(kube)
    topic, subscription = topic_and_subscription(pubsub_emulator)
    proc = ForwarderProcess(
        tmp_path / "forwarder.log", process_env(kube, namespace, pubsub_emulator, topic)
    )
    try:
        wait_until(proc.ready, timeout=30, what="the first list")
        proc.proc.send_signal(signal.SIGSTOP)
        try:
            created = create_events(kube, namespace, range(LAGGED))
            kube.compact()
        finally:
            proc.proc.send_signal(signal.SIGCONT)

        got = uids(pubsub_emulator.pull_until(subscription, LAGGED, timeout=90, quiet=0.5))

        assert set(got) == set(created)
        assert max(got.values()) == 1
        wait_until(lambda: proc.metric("relists_total") >= 1, what="the 410 and re-list")
        assert proc.metric("events_filtered_total", '{reason="stale"}') == 0
    finally:
        assert proc.stop() == 0


def process_env(
    kube: RealKube, namespace: str, emulator: PubSubEmulator, topic: str
) -> dict[str, str]:
    return {
        "KUBECONFIG": str(kube.kubeconfig),
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "KHOOK_TOPIC": topic,
        "KHOOK_CONFIG_DIR": str(REPO / "config"),
        "KHOOK_FORWARDER_NAMESPACES": namespace,
        "KHOOK_FORWARDER_DEAD_AFTER_SECONDS": "8",
        "KHOOK_FORWARDER_RELIST_OVERLAP_SECONDS": "1",
        "KHOOK_FORWARDER_BACKOFF_MAX_SECONDS": "0.5",
        "KHOOK_FORWARDER_FLUSH_SECONDS": "5",
    }


def test_a_quiet_spell_past_compaction_republishes_nothing(
    real_kube: RealKube,
    pubsub_emulator: PubSubEmulator,
    forwarder: Callable[..., Forwarder],
    wait_until: Callable[..., None],
):
    real_kube.require_faults()
    namespace = new_namespace(real_kube)
    topic, subscription = topic_and_subscription(pubsub_emulator)
    fwd = forwarder(
        real_kube,
        namespaces=namespace,
        emulator_host=pubsub_emulator.host,
        topic=topic,
        relist_overlap_seconds=30,
    )
    wait_until(fwd.ready, what="the first list")
    before = create_events(real_kube, namespace, range(5))
    assert set(uids(pubsub_emulator.pull_until(subscription, 5, timeout=30))) == set(before)

    # No BOOKMARKs for Events: the quiet watch's resourceVersion falls behind the compaction.
    real_kube.compact()
    wait_until(lambda: fwd.metrics.relists >= 1, timeout=30, what="the 410 and re-list")
    after = create_events(real_kube, namespace, range(5, 8))

    got = uids(pubsub_emulator.pull_until(subscription, 3, timeout=30, quiet=1.0))
    assert set(got) == set(after)
    assert max(got.values()) == 1
    assert fwd.metrics.filtered[ALREADY_SEEN] >= 5


def test_an_api_server_restart_and_a_kill_9_mid_stream_lose_nothing(
    real_kube: RealKube,
    pubsub_emulator: PubSubEmulator,
    tmp_path: Path,
    wait_until: Callable[..., None],
):
    real_kube.require_faults()
    namespace = new_namespace(real_kube)
    topic, subscription = topic_and_subscription(pubsub_emulator)
    env = process_env(real_kube, namespace, pubsub_emulator, topic)
    got: Counter[str] = Counter()

    def pulled() -> set[str]:
        got.update(uids(pubsub_emulator.pull(subscription)))
        return set(got)

    first = ForwarderProcess(tmp_path / "first.log", env)
    try:
        wait_until(first.ready, timeout=30, what="the first list")
        created = create_events(real_kube, namespace, range(300))
        real_kube.restart_apiserver()  # while the forwarder is still reading the burst
        created += create_events(real_kube, namespace, range(300, 600))
        wait_until(
            lambda: first.metric("events_forwarded_total") >= 350,
            timeout=30,
            what="the forwarder to be mid-stream",
        )
        first.proc.send_signal(signal.SIGKILL)  # with messages queued and the watch open
        first.proc.wait(10)
    finally:
        first.stop()
    created += create_events(real_kube, namespace, range(600, 700))
    second = ForwarderProcess(tmp_path / "second.log", env)
    try:
        wait_until(lambda: set(created) <= pulled(), timeout=60, what="every event")
        assert second.metric("api_errors_total") == 0
    finally:
        assert second.stop() == 0
    assert pulled() == set(created)
    # What the killed process had not published is sent again within the look-back; the
    # functions' dedup absorbs the copies (docs/forwarder.md, known limits).


def test_a_continue_token_expiring_mid_list_restarts_it_once_without_resending(
    real_kube: RealKube,
):
    real_kube.require_faults()
    namespace = new_namespace(real_kube)
    created = create_events(real_kube, namespace, range(20))
    settings = ForwarderSettings(
        kubeconfig=str(real_kube.kubeconfig), namespaces=namespace, topic="projects/p/topics/t"
    )
    api = kube_client.api_client(settings)
    real = kube_client.endpoints(api, settings)[0]
    pages: list[str | None] = []

    def list_and_compact(**kwargs: Any) -> Any:
        reply = real.list_fn(**kwargs)
        pages.append(kwargs.get("_continue"))
        if len(pages) == 2:
            real_kube.compact()  # the snapshot of the continue token is gone
        return reply

    sent: list[Outbound] = []
    metrics = ForwarderMetrics()
    watcher = EventWatcher(
        endpoint=EventsEndpoint(real.api, real.namespace, list_and_compact),
        timings=WatchTimings(
            lookback=timedelta(minutes=5),
            max_age=timedelta(minutes=15),
            relist_overlap=timedelta(seconds=30),
            watch_timeout=5,
            page_size=6,
            empty_limit=2,
            empty_seconds=1.0,
        ),
        event_filter=make_filter(api=real.api, clock=utcnow),
        sink=sent.append,
        metrics=metrics,
        clock=utcnow,
    )
    try:
        watcher.step(WatchState())
    finally:
        api.close()

    forwarded = Counter(json.loads(m.data)["metadata"]["uid"] for m in sent)
    assert set(forwarded) == set(created)
    assert max(forwarded.values()) == 1
    assert metrics.relists == 1
    assert metrics.api_errors == 0
    assert pages.count(None) == 2  # the list started again from the top once
    assert metrics.filtered[ALREADY_SEEN] == 12  # the two pages read before the expiry


def test_the_real_servers_watch_lines_keep_each_objects_own_text(real_kube: RealKube):
    """The forwarder publishes the Event's text as the API server sent it (no second encoding)
    only when the line has the server's layout: a real server's lines all do."""
    namespace = new_namespace(real_kube)
    created = create_events(real_kube, namespace, range(5))
    settings = ForwarderSettings(
        kubeconfig=str(real_kube.kubeconfig), namespaces=namespace, topic="projects/p/topics/t"
    )
    api = kube_client.api_client(settings)
    try:
        endpoint = kube_client.endpoints(api, settings)[0]
        # From no resourceVersion a watch starts with an ADDED line for every existing Event.
        lines = [
            event
            for event in RawWatch().stream(endpoint.list_fn, timeout_seconds=2)
            if event is not None and event["type"] == "ADDED"
        ]
    finally:
        api.close()

    assert {event["object"]["metadata"]["uid"] for event in lines} == set(created)
    for event in lines:
        assert json.loads(event["raw_text"]) == event["object"]
