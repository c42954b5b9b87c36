"""Owner lookups against the watch-protocol test server: Pod → ReplicaSet → Deployment and
Job → CronJob chains, resolved with the official client and cached (the API calls counted)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from khook_core.event import Workload
from khook_core.forwarder import kube
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.filtering import OwnedObject, attach_workloads
from khook_core.forwarder.metrics import ForwarderMetrics
from khook_core.forwarder.owners import OwnerResolver
from khook_core.forwarder.publishing import Publisher
from khook_core.workloads import ATTR_WORKLOAD_KIND, ATTR_WORKLOAD_NAME, ATTR_WORKLOAD_NAMESPACE
from tests.support.forwarder import NOW, TOPIC, RecordingClient, make_filter
from tests.support.k8s_events import new_event
from tests.support.kube_api import FakeKubeApi


@pytest.fixture
def cluster(kube_api: FakeKubeApi) -> FakeKubeApi:
    """shop: Deployment checkout → ReplicaSet checkout-7d9f8 → two Pods; CronJob nightly →
    Job nightly-28000 → one Pod; a bare Pod."""
    kube_api.put_object("ReplicaSet", "shop", "checkout-7d9f8", owner=("Deployment", "checkout"))
    for pod in ("checkout-7d9f8-x2x4q", "checkout-7d9f8-b7k2m"):
        kube_api.put_object("Pod", "shop", pod, owner=("ReplicaSet", "checkout-7d9f8"))
    kube_api.put_object("Job", "shop", "nightly-28000", owner=("CronJob", "nightly"))
    kube_api.put_object("Pod", "shop", "nightly-28000-q8z9w", owner=("Job", "nightly-28000"))
    kube_api.put_object("Pod", "shop", "debug")
    return kube_api


@pytest.fixture
def resolver(cluster: FakeKubeApi) -> Iterator[OwnerResolver]:
    settings = ForwarderSettings(kube_api_url=cluster.url, topic="projects/p/topics/t")
    with kube.api_client(settings) as api:
        yield OwnerResolver(kube.owner_fetch(api))


def test_a_pod_resolves_through_its_replicaset_to_the_deployment(
    cluster: FakeKubeApi, resolver: OwnerResolver
):
    found = resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")

    assert found == Workload(namespace="shop", kind="Deployment", name="checkout")
    assert not found.inferred
    assert [r.path for r in cluster.object_requests()] == [
        "/api/v1/namespaces/shop/pods/checkout-7d9f8-x2x4q",
        "/apis/apps/v1/namespaces/shop/replicasets/checkout-7d9f8",
    ]


def test_lookups_are_cached_per_object_so_a_storm_costs_one_call_per_new_pod(
    cluster: FakeKubeApi, resolver: OwnerResolver
):
    for _ in range(50):
        for pod in ("checkout-7d9f8-x2x4q", "checkout-7d9f8-b7k2m"):
            assert resolver.resolve("shop", "Pod", pod).name == "checkout"

    # two Pods and their one shared ReplicaSet, each read once
    assert len(cluster.object_requests()) == 3
    assert resolver.api_calls == 3


def test_a_job_pod_resolves_to_its_cronjob(resolver: OwnerResolver):
    found = resolver.resolve("shop", "Pod", "nightly-28000-q8z9w")

    assert found == Workload(namespace="shop", kind="CronJob", name="nightly")


def test_a_pod_without_a_controller_is_its_own_workload(resolver: OwnerResolver):
    assert resolver.resolve("shop", "Pod", "debug") == Workload(
        namespace="shop", kind="Pod", name="debug"
    )


def test_a_pod_that_cannot_be_read_has_no_owner_data_and_is_not_asked_for_again(
    cluster: FakeKubeApi, resolver: OwnerResolver
):
    for _ in range(5):
        assert not resolver.resolve("shop", "Pod", "gone-6b5d4c-abcde")

    assert len(cluster.object_requests()) == 1


def test_the_cache_is_bounded_and_expires(cluster: FakeKubeApi):
    now = [0.0]
    settings = ForwarderSettings(kube_api_url=cluster.url, topic="projects/p/topics/t")
    with kube.api_client(settings) as api:
        resolver = OwnerResolver(
            kube.owner_fetch(api), max_entries=2, ttl_seconds=60, monotonic=lambda: now[0]
        )
        resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")  # pod + replicaset
        resolver.resolve("shop", "Pod", "debug")  # evicts the first pod
        assert len(resolver) == 2
        resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")  # pod again (rs evicted too)
        calls = resolver.api_calls
        resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")
        assert resolver.api_calls == calls  # cached
        now[0] = 61.0
        resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")
        assert resolver.api_calls == calls + 2  # expired: pod and replicaset read again


def test_the_workload_is_looked_up_by_the_sender_and_only_for_published_events(
    cluster: FakeKubeApi, resolver: OwnerResolver
):
    event_filter = make_filter()
    event_filter.resolve_owners = True
    backoff = new_event(
        "BackOff", "Back-off restarting failed container", name="checkout-7d9f8-x2x4q"
    )
    chatter = new_event("Pulled", "image pulled", type_="Normal", name="checkout-7d9f8-b7k2m")

    published = event_filter.decide("ADDED", backoff, newer_than=NOW.replace(year=2000))
    filtered = event_filter.decide("ADDED", chatter, newer_than=NOW.replace(year=2000))

    # Judging makes no API call: the watch thread never waits on a lookup.
    assert cluster.object_requests() == []
    assert published.message is not None
    assert published.message.owned == OwnedObject("shop", "Pod", "checkout-7d9f8-x2x4q")
    assert filtered.message is None

    client = RecordingClient()
    publisher = Publisher(
        client=client,
        topic=TOPIC,
        metrics=ForwarderMetrics(),
        queue_size=10,
        batch_size=10,
        timeout=1.0,
        backoff=Backoff(0.01, 0.05),
        prepare=partial(attach_workloads, resolver),
    )
    publisher.start()
    publisher.submit(published.message)
    assert publisher.stop(flush_seconds=5)

    [(data, attributes)] = client.accepted
    assert data == published.message.data
    assert {k: v for k, v in attributes.items() if k.startswith("khook.workload.")} == {
        ATTR_WORKLOAD_NAMESPACE: "shop",
        ATTR_WORKLOAD_KIND: "Deployment",
        ATTR_WORKLOAD_NAME: "checkout",
    }
    assert {r.path.rsplit("/", 1)[-1] for r in cluster.object_requests()} == {
        "checkout-7d9f8-x2x4q",
        "checkout-7d9f8",
    }


def test_lookups_are_rate_limited_so_a_storm_of_new_pods_never_holds_the_watch(
    cluster: FakeKubeApi,
):
    now = [0.0]
    settings = ForwarderSettings(kube_api_url=cluster.url, topic="projects/p/topics/t")
    with kube.api_client(settings) as api:
        resolver = OwnerResolver(
            kube.owner_fetch(api), lookups_per_second=1, monotonic=lambda: now[0]
        )
        unknown = [resolver.resolve("shop", "Pod", f"new-{i}") for i in range(20)]
        assert (resolver.api_calls, resolver.skipped) == (5, 15)  # five seconds' burst
        skipped = resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")
        now[0] = 2.0  # two tokens back: the Pod and its ReplicaSet
        later = resolver.resolve("shop", "Pod", "checkout-7d9f8-x2x4q")

    assert not any(unknown)
    assert not skipped  # over the limit: no owner data, not cached
    assert later == Workload(namespace="shop", kind="Deployment", name="checkout")
