"""The manifests' RBAC, both Event APIs and field selectors, on a real kube-apiserver.

The forwarder authenticates as the manifests' ServiceAccount (a static token user of that
name), bound by ``config/k8s/rbac-cluster.yaml`` or ``rbac-namespaced.yaml`` applied as they
are, and lists and watches with nothing more. The local stack's cluster probe asks for exactly
what the forwarder will watch, so namespaced rights are enough for it. A field selector the
server refuses fails readiness with the server's own reason.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from khook_core.event import utcnow
from khook_core.forwarder import kube as kube_client
from khook_core.forwarder.app import Forwarder
from khook_core.forwarder.config import CORE_API, EVENTS_API, ForwarderSettings
from khook_core.forwarder.filtering import Outbound
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.watching import EventWatcher, Outcome, WatchState, WatchTimings
from khook_local.forwarder import reachable_cluster
from tests.support.forwarder import REPO, TOPIC, RecordingClient, make_filter
from tests.support.kube_real import (
    CONTEXT,
    RealKube,
    create_events,
    new_namespace,
)

MANIFESTS = REPO / "config" / "k8s"


def apply(kube: RealKube, documents: list[dict[str, Any]]) -> None:
    """Create each object as the admin (already present is fine: the server is shared)."""
    with kube.api_client() as api:
        for document in documents:
            try:
                utils.create_from_dict(api, document)  # type: ignore[no-untyped-call]
            except utils.FailToCreateError as failure:
                if any(exc.status != 409 for exc in failure.api_exceptions):
                    raise


def manifests(name: str, namespace: str | None = None) -> list[dict[str, Any]]:
    text = (MANIFESTS / name).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    if namespace is not None:  # rbac-namespaced.yaml is written for one example namespace
        for doc in docs:
            doc["metadata"]["namespace"] = namespace
    return docs


@pytest.fixture
def bound(
    real_kube: RealKube, wait_until: Callable[..., None]
) -> Iterator[Callable[[str, str], str]]:
    """``bound(mode, namespace)``: the manifests' service account and RBAC (the cluster-wide
    binding removed after, unless it was there before); returns the account's token."""
    cluster_wide: list[bool] = []

    def bind(mode: str, namespace: str) -> str:
        apply(real_kube, manifests("namespace.yaml") + manifests("serviceaccount.yaml"))
        token = real_kube.forwarder_token()
        if mode == "cluster":
            cluster_wide.append(not can_list(real_kube, None, token))
            apply(real_kube, manifests("rbac-cluster.yaml"))
        else:
            apply(real_kube, manifests("rbac-namespaced.yaml", namespace))
        wait_until(lambda: can_list(real_kube, namespace, token), what="the binding to take effect")
        return token

    yield bind
    if any(cluster_wide):
        with real_kube.api_client() as api:
            rbac = client.RbacAuthorizationV1Api(api)
            rbac.delete_cluster_role_binding("khook-forwarder-events")
            rbac.delete_cluster_role("khook-forwarder-events")


def can_list(kube: RealKube, namespace: str | None, token: str) -> bool:
    with kube.api_client(token) as api:
        events = client.EventsV1Api(api)
        try:
            if namespace is None:
                events.list_event_for_all_namespaces(limit=1, _preload_content=False)
            else:
                events.list_namespaced_event(namespace, limit=1, _preload_content=False)
        except ApiException as exc:
            if exc.status == 403:
                return False
            raise
    return True


def watcher(settings: ForwarderSettings) -> tuple[EventWatcher, list[Outbound], Any]:
    api = kube_client.api_client(settings)
    endpoint = kube_client.endpoints(api, settings)[0]
    sent: list[Outbound] = []
    timings = WatchTimings(
        lookback=timedelta(minutes=5),
        max_age=timedelta(minutes=15),
        relist_overlap=timedelta(seconds=30),
        watch_timeout=1,
        page_size=50,
        empty_limit=2,
        empty_seconds=0.5,
    )
    return (
        EventWatcher(
            endpoint=endpoint,
            timings=timings,
            sink=sent.append,
            event_filter=make_filter(api=settings.api, clock=utcnow),
            metrics=ForwarderMetrics(),
            clock=utcnow,
        ),
        sent,
        api,
    )


@pytest.mark.parametrize("mode", ["namespaced", "cluster"])
@pytest.mark.parametrize("api", [EVENTS_API, CORE_API])
def test_the_manifests_rbac_is_enough_to_list_and_watch_both_apis(
    api: str,
    mode: str,
    real_kube: RealKube,
    bound: Callable[[str, str], str],
    tmp_path: Path,
    wait_until: Callable[..., None],
):
    namespace = new_namespace(real_kube)
    token = bound(mode, namespace)
    kubeconfig = real_kube.write_kubeconfig(tmp_path / "kubeconfig", token)
    listed = create_events(real_kube, namespace, range(2))
    settings = ForwarderSettings(
        kubeconfig=str(kubeconfig),
        api=api,
        topic="projects/p/topics/t",
        namespaces=namespace if mode == "namespaced" else "",
    )
    watch, sent, api_client = watcher(settings)
    state = WatchState()

    def mine() -> list[dict[str, Any]]:
        return [json.loads(m.data) for m in sent if m.attributes["khook.namespace"] == namespace]

    try:
        assert watch.step(state) is Outcome.LISTED
        watched = create_events(real_kube, namespace, range(2, 4))
        while len(mine()) < 4:
            assert watch.step(state) in (Outcome.WATCHED, Outcome.EMPTY)
    finally:
        api_client.close()

    uids = [e["metadata"]["uid"] for e in mine()]
    assert len(uids) == 4
    assert (set(uids[:2]), set(uids[2:])) == (set(listed), set(watched))
    assert {e["apiVersion"] for e in mine()} == {api}
    probe_env = {"KUBECONFIG": str(kubeconfig), "KHOOK_FORWARDER_API": api}
    if mode == "namespaced":
        wait_until(
            lambda: not can_list(real_kube, None, token), what="no rights outside the namespace"
        )
        context, why = reachable_cluster(env={**probe_env, "KHOOK_FORWARDER_NAMESPACES": namespace})
        assert (context, why) == (CONTEXT, "")
        context, why = reachable_cluster(env=probe_env)
        assert context is None
        assert "403" in why
        assert "all namespaces" in why
    else:
        assert reachable_cluster(env=probe_env) == (CONTEXT, "")


def test_a_refused_field_selector_fails_readiness_with_the_servers_reason(
    real_kube: RealKube,
    wait_until: Callable[..., None],
):
    settings = ForwarderSettings(
        kubeconfig=str(real_kube.kubeconfig),
        field_selector="spec.nodeName=n1",
        port=0,
        host="127.0.0.1",
        topic=TOPIC,
        config_dir=REPO / "config",
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.2,
    )
    fwd = Forwarder(settings, publish_client=RecordingClient())
    fwd.start()
    try:
        url = f"http://127.0.0.1:{fwd.probes.port}/readyz"

        def readiness() -> str:
            try:
                urllib.request.urlopen(url, timeout=2)
            except urllib.error.HTTPError as refused:
                return str(refused.read().decode())
            return "ready"

        wait_until(
            lambda: "field label not supported: spec.nodeName" in readiness(),
            what="the server's reason in /readyz",
        )
    finally:
        fwd.stop(flush_seconds=0)
    assert not fwd.ready()


@pytest.mark.parametrize("api", [EVENTS_API, CORE_API])
def test_a_selector_written_for_either_api_is_translated_and_served(
    api: str,
    real_kube: RealKube,
):
    namespace = new_namespace(real_kube)
    created = create_events(real_kube, namespace, range(2))
    for selector in ("involvedObject.kind=Pod,type=Warning", "regarding.kind=Pod,type=Warning"):
        settings = ForwarderSettings(
            kubeconfig=str(real_kube.kubeconfig),
            api=api,
            namespaces=namespace,
            field_selector=selector,
            topic="projects/p/topics/t",
        )
        watch, sent, api_client = watcher(settings)
        try:
            assert watch.step(WatchState()) is Outcome.LISTED
        finally:
            api_client.close()
        assert sorted(json.loads(m.data)["metadata"]["uid"] for m in sent) == sorted(created)
