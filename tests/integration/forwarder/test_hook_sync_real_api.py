"""Hooks from a real kube-apiserver (the project's CRD, unchanged) into the live configuration.

The API server decides what it decides in production: the CRD's schema, resourceVersions,
watch semantics. An invalid Hook is rejected alone with its field named, the others are
published; an update and a delete reach the snapshot; the snapshot loads as a function loads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.hook_sync import GROUP, PLURAL, VERSION, HookPublisher, HookSet, HookWatch
from khook_core.liveconfig import snapshot
from khook_core.state.config_sqlite import SqliteConfigStore
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_real import RealKube, new_namespace
from tests.support.paths import REPO

CRD = REPO / "tests" / "data" / "compat" / "kagent.dev_hooks.crd.yaml"
WAIT_S = 60.0


def hook(
    namespace: str, name: str, prompt: str = "Pod {{.ResourceName}} restarted"
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Hook",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "eventConfigurations": [
                {"eventType": "pod-restart", "agentRef": {"name": "k8s-agent"}, "prompt": prompt}
            ]
        },
    }


@pytest.fixture(scope="module")
def kube(real_kube: RealKube) -> RealKube:
    """The API server with the Hook CRD installed (once) and established."""
    from kubernetes import client

    with real_kube.api_client() as api:
        ext = client.ApiextensionsV1Api(api)
        try:
            ext.create_custom_resource_definition(yaml.safe_load(CRD.read_text()))
        except client.ApiException as exc:
            if exc.status != 409:  # already there from an earlier module
                raise
        deadline = time.monotonic() + WAIT_S
        while True:
            crd = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
            status = crd.status
            conditions = {c.type: c.status for c in (status.conditions if status else None) or []}
            if conditions.get("Established") == "True":
                return real_kube
            assert time.monotonic() < deadline, conditions
            time.sleep(0.2)


@pytest.fixture
def sync(kube: RealKube, tmp_path: Path) -> Iterator[tuple[str, Any, HookPublisher]]:
    """A namespace, a client for it, and a running watch + publisher into an SQLite store."""
    from kubernetes import client

    namespace = new_namespace(kube, "hooks")
    api = kube.api_client()
    base = snapshot.files_of(make_config(tmp_path, restart_hook()))
    store = SqliteConfigStore(tmp_path / "state.db")
    hooks = HookSet()
    watch = HookWatch(api, hooks, namespace=namespace)
    publisher = HookPublisher(hooks, store, base_files=base, clock=lambda: _now(), settle=0.1)
    stop = threading.Event()
    threads = [
        threading.Thread(target=watch.run, args=(stop, Backoff(0.1, 1.0)), daemon=True),
        threading.Thread(target=publisher.run, args=(stop, Backoff(0.1, 1.0)), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield namespace, client.CustomObjectsApi(api), publisher
    finally:
        stop.set()
        watch.stop()
        for thread in threads:
            thread.join(10)
        store.close()
        api.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def cluster_hooks(publisher: HookPublisher) -> dict[str, str]:
    current = publisher.store.read_config()
    if current is None:
        return {}
    return {k: v for k, v in current.files.items() if k.startswith("hooks/cluster/")}


def test_an_invalid_hook_is_rejected_alone_and_updates_and_deletes_reach_the_snapshot(sync):
    namespace, custom, publisher = sync
    for body in (hook(namespace, "web"), hook(namespace, "broken", "Pod {{.Podname}}")):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    wait_for(
        lambda: (
            publisher.last is not None
            and len(publisher.last.rejected) == 1
            and len(publisher.last.accepted) == 1
        ),
        "both Hooks judged",
    )
    assert publisher.last is not None
    assert publisher.last.accepted == [f"{namespace}/web"]
    [problem] = publisher.last.rejected[f"{namespace}/broken"]
    assert "prompt" in problem.message
    assert "{{.Podname}}" in problem.message
    assert list(cluster_hooks(publisher)) == [f"hooks/cluster/{namespace}/web.yaml"]
    current = publisher.store.read_config()
    assert current is not None
    assert current.origin == "cluster"
    config = snapshot.load_files(current.files, label="snapshot", version=str(current.version))
    assert config.hooks.hooks() == [f"{namespace}/web"]  # the files' own hooks are not in it

    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "web",
        {
            "spec": {
                "eventConfigurations": [
                    {
                        "eventType": "pod-restart",
                        "agentRef": {"name": "k8s-agent"},
                        "prompt": "UPDATED {{.ResourceName}}",
                    }
                ]
            }
        },
    )
    wait_for(lambda: "UPDATED" in "".join(cluster_hooks(publisher).values()), "the update")

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "web")
    wait_for(lambda: not cluster_hooks(publisher), "the delete")


def test_a_thousand_hooks_load_into_one_snapshot(sync):
    namespace, custom, publisher = sync
    for i in range(1000):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, hook(namespace, f"h-{i:04d}")
        )
    wait_for(lambda: len(cluster_hooks(publisher)) == 1000, "1,000 Hooks published")
    assert publisher.last is not None
    assert not publisher.last.rejected


def test_the_forwarder_with_the_manifests_rbac_publishes_its_namespaces_hooks(
    kube: RealKube, tmp_path: Path
):
    from kubernetes import client

    from khook_core.forwarder.app import Forwarder
    from khook_core.forwarder.config import ForwarderSettings
    from tests.integration.forwarder.test_forwarder_real_rbac import apply, manifests
    from tests.support.forwarder import TOPIC, RecordingClient

    namespace = new_namespace(kube, "hooks")
    apply(kube, manifests("namespace.yaml") + manifests("serviceaccount.yaml"))
    apply(kube, manifests("rbac-namespaced.yaml", namespace))
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", kube.forwarder_token())
    config_dir = make_config(tmp_path, restart_hook())
    state = tmp_path / "state.db"
    settings = ForwarderSettings(
        kubeconfig=str(kubeconfig),
        namespaces=namespace,
        port=0,
        host="127.0.0.1",
        topic=TOPIC,
        config_dir=config_dir,
        hooks_state=f"sqlite:{state}",
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.5,
    )
    with kube.api_client() as admin:
        client.CustomObjectsApi(admin).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, hook(namespace, "web")
        )
    forwarder = Forwarder(settings, publish_client=RecordingClient())
    forwarder.start()
    store = SqliteConfigStore(state)
    try:

        def published() -> bool:
            current = store.read_config()
            return current is not None and (f"hooks/cluster/{namespace}/web.yaml" in current.files)

        wait_for(published, "the forwarder to publish the namespace's Hook")
    finally:
        forwarder.stop(0)
        store.close()
