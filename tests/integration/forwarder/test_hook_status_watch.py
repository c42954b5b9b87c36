"""Hook status against the project's Hook test server, for faults a real API server will not
give on demand: a Hook whose status patch meets a conflict on every attempt of a pass is
written on a later pass (never left behind), a Hook whose status is refused does not hold up the
others, and each firing's Event is created, then patched.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.hook_events import FiringEvents
from khook_core.forwarder.hook_report import HookReporter, Judgements
from khook_core.forwarder.hook_status import WRITE_ATTEMPTS, StatusWriter
from khook_core.forwarder.hook_sync import HookPublisher, HookSet, HookWatch
from khook_core.liveconfig import snapshot
from khook_core.state.base import DedupKey, Firing
from khook_core.state.config_sqlite import SqliteConfigStore
from khook_core.state.sqlite import SqliteStateStore
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_hooks import HookKubeApi

SPEC = {
    "eventConfigurations": [
        {"eventType": "pod-restart", "agentRef": {"name": "k8s-agent"}, "prompt": "Pod restarted"}
    ]
}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Rig:
    server: HookKubeApi
    audit: SqliteStateStore
    writer: StatusWriter


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    server = HookKubeApi().start()
    with running(server, tmp_path) as started:
        yield started


@contextlib.contextmanager
def running(server: HookKubeApi, tmp_path: Path) -> Iterator[Rig]:
    """The forwarder's Hook watch, publisher and reporter on ``server`` (stopped after)."""
    cfg = client.Configuration()
    cfg.host = server.url
    api = client.ApiClient(cfg)
    config_store = SqliteConfigStore(tmp_path / "state.db")
    audit = SqliteStateStore(str(tmp_path / "state.db"))
    hooks, judgements = HookSet(), Judgements()
    watch = HookWatch(api, hooks, namespace="shop")
    publisher = HookPublisher(
        hooks,
        config_store,
        base_files=snapshot.files_of(make_config(tmp_path, restart_hook())),
        clock=now,
        settle=0.05,
        judgements=judgements,
    )
    writer = StatusWriter(client.CustomObjectsApi(api))
    reporter = HookReporter(
        hooks.objects,
        judgements,
        audit,
        writer,
        FiringEvents(client.CoreV1Api(api), monotonic=time.monotonic),
        clock=now,
        interval=0.1,
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=run, args=(stop, Backoff(0.05, 0.2)), daemon=True)
        for run in (watch.run, publisher.run, reporter.run)
    ]
    for thread in threads:
        thread.start()
    try:
        yield Rig(server, audit, writer)
    finally:
        stop.set()
        watch.stop()
        server.stop()
        for thread in threads:
            thread.join(10)
        audit.close()
        config_store.close()
        api.close()  # type: ignore[no-untyped-call]


def test_a_hook_whose_every_write_of_a_pass_conflicts_is_written_on_a_later_pass(
    rig: Rig, wait_until: Callable[..., None]
):
    rig.server.conflicts = WRITE_ATTEMPTS + 2  # one whole pass, and two attempts of the next
    rig.server.put_hook("shop", "web", SPEC)

    def ready() -> bool:
        conditions = rig.server.hooks["shop/web"]["status"].get("conditions") or []
        return any(c["status"] == "True" for c in conditions)

    wait_until(ready, timeout=30, what="the status written despite the conflicts")
    outcomes = [code for key, code in rig.server.status_patches if key == "shop/web"]
    assert outcomes == [409] * (WRITE_ATTEMPTS + 2) + [200]
    assert rig.writer.conflicts == WRITE_ATTEMPTS + 2


def test_a_hook_whose_status_is_refused_does_not_hold_up_the_others(
    rig: Rig, wait_until: Callable[..., None]
):
    rig.server.refuse = {"shop/a-refused"}
    rig.server.put_hook("shop", "a-refused", SPEC)  # listed, and so written, first
    rig.server.put_hook("shop", "web", SPEC)

    wait_until(lambda: rig.server.hooks["shop/web"]["status"], what="web's status written")
    assert ("shop/a-refused", 422) in rig.server.status_patches


def test_each_firing_creates_then_patches_the_hooks_fired_event(
    rig: Rig, wait_until: Callable[..., None]
):
    rig.server.put_hook("shop", "web", SPEC)
    wait_until(lambda: rig.server.hooks["shop/web"]["status"], what="web judged")
    at = now() + timedelta(seconds=1)
    for i in range(2):
        rig.audit.record(
            Firing(
                DedupKey("k"),
                "shop/web",
                f"e{i}",
                "pod-restart",
                "kubernetes",
                "shop/Pod/web-1",
                "kagent/k8s-agent",
                "h",
                "dispatched",
                at + timedelta(seconds=i),
                task_id=f"task-{i}",
            )
        )
        wait_until(
            lambda n=i + 1: any(e.get("count") == n for e in rig.server.events.values()),
            what=f"the Event counting {i + 1}",
        )
    [event] = rig.server.events.values()
    assert event["reason"] == "Fired"
    assert "task task-1" in event["message"]
    assert event["involvedObject"]["name"] == "web"


def test_a_restarted_forwarder_rebuilds_active_events_from_the_audit_trail(
    tmp_path: Path, wait_until: Callable[..., None]
):
    server = HookKubeApi(list_delay=1.0).start()  # several status passes before the list
    server.put_hook("shop", "web", SPEC)
    earlier = now() - timedelta(minutes=2)
    with contextlib.closing(SqliteStateStore(str(tmp_path / "state.db"))) as audit:  # before
        audit.record(
            Firing(
                DedupKey("k"),
                "shop/web",
                "e0",
                "pod-restart",
                "kubernetes",
                "shop/Pod/web-1",
                "kagent/k8s-agent",
                "h",
                "dispatched",
                earlier,
                task_id="t",
            )
        )
    with running(server, tmp_path):
        wait_until(
            lambda: server.hooks["shop/web"]["status"].get("activeEvents"),
            what="the active event rebuilt",
        )
    [entry] = server.hooks["shop/web"]["status"]["activeEvents"]
    assert (entry["resourceName"], entry["status"]) == ("web-1", "firing")
    assert not server.events  # recorded before this forwarder started: no Event again


def test_the_connection_is_clean_for_the_next_request_after_a_status_write():
    """A reply's unread body left on a kept-alive connection is read as the next reply."""
    server = HookKubeApi().start()
    server.put_hook("shop", "web", SPEC)
    cfg = client.Configuration()
    cfg.host = server.url
    cfg.connection_pool_maxsize = 1  # every request on the one connection
    api = client.ApiClient(cfg)
    try:
        writer = StatusWriter(client.CustomObjectsApi(api))
        events = FiringEvents(client.CoreV1Api(api), monotonic=time.monotonic)
        for i in range(3):
            status: dict[str, Any] = {"lastUpdated": f"n{i}", "activeEvents": [{"n": i}]}

            def desired(obj: Any, wanted: dict[str, Any] = status) -> dict[str, Any]:
                return wanted

            assert writer.write("shop", "web", desired)
            events.add(
                "shop/web",
                Firing(
                    DedupKey("k"),
                    "shop/web",
                    f"e{i}",
                    "pod-restart",
                    "kubernetes",
                    "shop/Pod/web-1",
                    "kagent/k8s-agent",
                    "h",
                    "dispatched",
                    now(),
                    task_id=f"t{i}",
                ),
            )
            events.flush({"shop/web": server.hooks["shop/web"]})
            stored = writer.read("shop", "web")
            assert stored is not None
            assert stored["status"]["activeEvents"] == [{"n": i}]
        [event] = server.events.values()
        assert event["count"] == 3
    finally:
        api.close()  # type: ignore[no-untyped-call]
        server.stop()
