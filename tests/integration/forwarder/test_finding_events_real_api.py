"""Findings reported to the cluster: ``AgentFinding`` Events written by the forwarder on a real
kube-apiserver, from the task records the functions leave in the shared store.

The server decides what production would: Event validation, name conflicts (how a finding is
written once across restarts) and RBAC as the forwarder's service account.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.finding_events import MESSAGE_BYTES, OUTCOME, FindingEvents
from khook_core.forwarder.hook_events import FiringEvents
from khook_core.forwarder.hook_report import HookReporter, Judgements
from khook_core.forwarder.hook_status import GROUP, PLURAL, VERSION, StatusWriter
from khook_core.forwarder.hook_sync import HookPublisher, HookSet, HookWatch
from khook_core.liveconfig import snapshot
from khook_core.state.base import DedupKey, Firing
from khook_core.state.config_sqlite import SqliteConfigStore
from khook_core.state.sqlite import SqliteStateStore
from tests.integration.forwarder.test_hook_status_real_api import (
    PROJECT_CRD,
    crd_document,
    hook,
    install_crd,
    now,
    wait_for,
)
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_real import RealKube, new_namespace

PENDING = {"report.0.kubernetes": "pending: object, hook"}


@pytest.fixture(scope="module")
def kube(real_kube: RealKube) -> RealKube:
    with real_kube.api_client() as api:
        install_crd(api, crd_document(PROJECT_CRD))
    return real_kube


def task_end(
    namespace: str,
    state: str,
    finding: str,
    *,
    task: str = "task-1",
    pod: str = "web-1",
    hook_name: str = "web",
    extra: dict[str, str] | None = None,
) -> Firing:
    """The audit record the functions write when a task ends (``tracking.tracker.record``)."""
    at = now()
    return Firing(
        key=DedupKey(f"{namespace}/{hook_name}|pod-restart|{pod}"),
        hook=f"{namespace}/{hook_name}",
        event_id=f"ev-{pod}",
        event_type="pod-restart",
        source="kubernetes",
        resource=f"{namespace}/Pod/{pod}",
        agent=f"{namespace}/k8s-agent",
        prompt_hash="",
        outcome=f"task:{state}",
        at=at,
        task_id=task,
        extra=dict(PENDING if extra is None else extra),
        task_state=state,
        finding=finding,
        finding_chars=str(len(finding)),
        finished_at=at.isoformat(),
    )


@dataclass
class Cluster:
    namespace: str
    core: client.CoreV1Api
    audit: SqliteStateStore
    start: Callable[[], None]
    stop: Callable[[], None]

    def findings(self, kind: str, name: str) -> list[dict[str, Any]]:
        reply: Any = self.core.list_namespaced_event(
            self.namespace,
            field_selector=(
                f"involvedObject.kind={kind},involvedObject.name={name},reason=AgentFinding"
            ),
            _preload_content=False,
        )
        items: list[dict[str, Any]] = json.loads(reply.data)["items"]
        return items

    def statuses(self) -> list[Firing]:
        return [f for f in self.audit.firings(limit=1000) if f.outcome == OUTCOME]


@pytest.fixture
def cluster(kube: RealKube, tmp_path: Path) -> Iterator[Cluster]:
    """A namespace with a Pod and a Hook, and the forwarder's Hook watch, publisher and
    reporter with findings on; ``stop``/``start`` restart the reporter (a new forwarder)."""
    namespace = new_namespace(kube, "finding")
    api = kube.api_client()
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        namespace,
        {  # type: ignore[arg-type]
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        },
        _preload_content=False,
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, hook(namespace, "web")
    )
    base = snapshot.files_of(make_config(tmp_path, restart_hook()))
    config_store = SqliteConfigStore(tmp_path / "state.db")
    audit = SqliteStateStore(str(tmp_path / "state.db"))
    hooks = HookSet()
    judgements = Judgements()
    watch = HookWatch(api, hooks, namespace=namespace)
    publisher = HookPublisher(
        hooks, config_store, base_files=base, clock=now, settle=0.1, judgements=judgements
    )
    running: list[tuple[threading.Event, list[threading.Thread]]] = []

    def start() -> None:
        reporter = HookReporter(
            hooks.objects,
            judgements,
            audit,
            StatusWriter(client.CustomObjectsApi(api)),
            FiringEvents(core, monotonic=time.monotonic),
            clock=now,
            interval=0.2,
            findings=FindingEvents(core, audit.record, clock=now),
        )
        stop = threading.Event()
        thread = threading.Thread(target=reporter.run, args=(stop, Backoff(0.1, 1.0)))
        thread.start()
        running.append((stop, [thread]))

    def stop() -> None:
        while running:
            event, threads = running.pop()
            event.set()
            for thread in threads:
                thread.join(10)

    outer = threading.Event()
    threads = [
        threading.Thread(target=run, args=(outer, Backoff(0.1, 1.0)), daemon=True)
        for run in (watch.run, publisher.run)
    ]
    for thread in threads:
        thread.start()
    start()
    try:
        yield Cluster(namespace, core, audit, start, stop)
    finally:
        stop()
        outer.set()
        watch.stop()
        for thread in threads:
            thread.join(10)
        audit.close()
        config_store.close()
        api.close()


def test_a_finding_becomes_an_event_on_the_pod_and_one_on_the_hook(cluster: Cluster):
    ns = cluster.namespace
    cluster.audit.record(task_end(ns, "completed", "web-1 ran out of memory: limit 64Mi"))

    [on_pod] = wait_for(lambda: cluster.findings("Pod", "web-1"), "the Event on the Pod")
    [on_hook] = wait_for(lambda: cluster.findings("Hook", "web"), "the Event on the Hook")
    [status] = wait_for(cluster.statuses, "the delivery status recorded")

    for event in (on_pod, on_hook):
        assert event["type"] == "Normal"
        assert event["reason"] == "AgentFinding"
        assert event["message"] == (
            f"task task-1 of {ns}/k8s-agent ended completed: web-1 ran out of memory: limit 64Mi"
        )
        assert event["source"]["component"] == "khook-forwarder"
    assert on_pod["involvedObject"]["namespace"] == ns
    pod: Any = cluster.core.read_namespaced_pod("web-1", ns, _preload_content=False)
    # The Pod's uid: `kubectl describe pod` selects its Events by it.
    assert on_pod["involvedObject"]["uid"] == json.loads(pod.data)["metadata"]["uid"]
    assert on_hook["involvedObject"]["uid"]  # the Hook's own: kubectl describe hook lists it
    assert status.extra == {"report.0.kubernetes": "sent"}
    assert (status.hook, status.task_id, status.task_state) == (f"{ns}/web", "task-1", "completed")
    assert status.finding == ""  # the finding stays in the task's record


def test_a_failed_task_is_a_warning_and_a_hostile_finding_is_escaped_and_capped(
    cluster: Cluster,
):
    ns = cluster.namespace
    hostile = "boom\x1b[31m\u202e\x00 " + "x" * 100_000
    cluster.audit.record(
        task_end(ns, "failed", hostile, extra={"report.1.kubernetes": "pending: object"})
    )

    [event] = wait_for(lambda: cluster.findings("Pod", "web-1"), "the Event on the Pod")
    [status] = wait_for(cluster.statuses, "the delivery status recorded")

    assert event["type"] == "Warning"
    message = event["message"]
    assert len(message.encode()) <= MESSAGE_BYTES
    assert message.endswith("…")
    assert "boom\\u001b[31m\\u202e\\u0000 xxx" in message
    assert not any(ch in message for ch in "\x1b\u202e\x00")
    assert cluster.findings("Hook", "web") == []  # only the object was asked for
    assert status.extra == {"report.1.kubernetes": "sent"}


def test_each_finding_is_written_once_across_restarts(cluster: Cluster):
    ns = cluster.namespace
    cluster.audit.record(task_end(ns, "completed", "first", task="task-1"))
    wait_for(cluster.statuses, "the first finding reported")
    cluster.stop()  # a new forwarder reads the audit trail back: the finding is reported
    cluster.start()
    cluster.audit.record(task_end(ns, "completed", "second", task="task-2"))

    wait_for(lambda: len(cluster.statuses()) == 2, "the second finding reported")
    time.sleep(1)  # a few more passes of the new reporter: nothing is written twice

    messages = sorted(e["message"].rsplit(": ", 1)[-1] for e in cluster.findings("Pod", "web-1"))
    assert messages == ["first", "second"]
    assert len(cluster.findings("Hook", "web")) == 2
    assert sorted(s.task_id for s in cluster.statuses()) == ["task-1", "task-2"]


def test_events_written_before_a_crash_are_not_written_again(kube: RealKube, tmp_path: Path):
    """The Events were created but the status was never recorded: the next run finds them
    (409) and records ``sent`` without a second Event."""
    namespace = new_namespace(kube, "crash")
    audit = SqliteStateStore(str(tmp_path / "state.db"))
    record = task_end(
        namespace, "completed", "found it", extra={"report.0.kubernetes": "pending: object"}
    )
    with kube.api_client() as api:
        core = client.CoreV1Api(api)

        def lost(_: Firing) -> None:
            raise ConnectionError("the store went away")

        crashed = FindingEvents(core, lost, clock=now)
        crashed.add(record)
        crashed.flush({})
        assert crashed.written == 1
        assert crashed.pending

        again = FindingEvents(core, audit.record, clock=now)
        again.add(record)
        again.flush({})

        reply: Any = core.list_namespaced_event(
            namespace, field_selector="reason=AgentFinding", _preload_content=False
        )
        assert len(json.loads(reply.data)["items"]) == 1
    assert again.written == 0
    assert not again.pending
    [status] = [f for f in audit.firings() if f.outcome == OUTCOME]
    assert status.extra == {"report.0.kubernetes": "sent"}
    audit.close()


def test_the_manifests_rbac_lets_the_forwarder_write_findings_where_it_is_bound_only(
    kube: RealKube, tmp_path: Path
):
    from khook_core.forwarder.app import Forwarder
    from khook_core.forwarder.config import ForwarderSettings
    from tests.integration.forwarder.test_forwarder_real_rbac import apply, manifests
    from tests.support.forwarder import TOPIC, RecordingClient

    namespace, elsewhere = new_namespace(kube, "rbac"), new_namespace(kube, "other")
    apply(kube, manifests("namespace.yaml") + manifests("serviceaccount.yaml"))
    apply(kube, manifests("rbac-namespaced.yaml", namespace))
    token = kube.forwarder_token()
    state = tmp_path / "state.db"
    settings = ForwarderSettings(
        kubeconfig=str(kube.write_kubeconfig(tmp_path / "kubeconfig", token)),
        namespaces=namespace,
        port=0,
        host="127.0.0.1",
        topic=TOPIC,
        config_dir=make_config(tmp_path, restart_hook()),
        hooks_state=f"sqlite:{state}",
        status_interval_seconds=0.2,
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.5,
    )
    with kube.api_client() as admin:
        client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, hook(namespace, "web")
        )
        admin_core = client.CoreV1Api(admin)
        audit = SqliteStateStore(str(state))
        forwarder = Forwarder(settings, publish_client=RecordingClient())
        forwarder.start()
        try:
            audit.record(task_end(namespace, "completed", "here", task="task-1"))
            audit.record(task_end(elsewhere, "completed", "there", task="task-2"))

            def statuses() -> dict[str, dict[str, str]]:
                return {f.task_id: f.extra for f in audit.firings() if f.outcome == OUTCOME}

            reported = wait_for(lambda: len(statuses()) == 2 and statuses(), "both reported")
        finally:
            forwarder.stop(0)
            audit.close()

        written = agent_findings(admin_core, namespace)
        assert sorted(e["involvedObject"]["kind"] for e in written) == ["Hook", "Pod"]
        assert agent_findings(admin_core, elsewhere) == []
    assert reported["task-1"] == {"report.0.kubernetes": "sent"}
    refused = reported["task-2"]["report.0.kubernetes"]
    assert refused.startswith("failed: hook: the Hook is not in the cluster; object: HTTP 403: ")
    assert "forbidden" in refused

    with kube.api_client(token) as api:  # Events are created, never deleted or replaced
        core = client.CoreV1Api(api)
        name = written[0]["metadata"]["name"]
        forbidden: list[Callable[[], Any]] = [
            lambda: core.delete_namespaced_event(name, namespace),
            lambda: core.replace_namespaced_event(
                name,
                namespace,
                {"metadata": {"name": name}, "involvedObject": {}},  # type: ignore[arg-type]
            ),
        ]
        for attempt in forbidden:
            with pytest.raises(ApiException) as denied:
                attempt()
            assert denied.value.status == 403


def agent_findings(core: client.CoreV1Api, namespace: str) -> list[dict[str, Any]]:
    reply: Any = core.list_namespaced_event(
        namespace, field_selector="reason=AgentFinding", _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(reply.data)["items"]
    return items
