"""Owner lookups as the forwarder's ServiceAccount on a real kube-apiserver: the manifests'
RBAC grants the ``get`` calls the resolver makes, and the server's ownerReferences resolve."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils

from khook_core.event import Workload
from khook_core.forwarder import kube
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.owners import OwnerResolver
from tests.support.forwarder import REPO
from tests.support.kube_real import RealKube, new_namespace

MANIFESTS = REPO / "config" / "k8s"
_CONTAINER = {"name": "app", "image": "example.invalid/app:1"}
_TEMPLATE = {
    "metadata": {"labels": {"app": "checkout"}},
    "spec": {"containers": [_CONTAINER], "restartPolicy": "Never"},
}


def _create(api: Any, document: dict[str, Any]) -> dict[str, Any]:
    created = utils.create_from_dict(api, document)  # type: ignore[no-untyped-call]
    return api.sanitize_for_serialization(created[0])  # type: ignore[no-any-return]


def _owned(kind: str, made: dict[str, Any], api_version: str) -> dict[str, Any]:
    meta = made["metadata"]
    return {
        "ownerReferences": [
            {
                "apiVersion": api_version,
                "kind": kind,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
            }
        ]
    }


def _workloads(kube_: RealKube, namespace: str) -> None:
    """checkout: Deployment → ReplicaSet → Pod; nightly: CronJob → Job (written by hand:
    no controller-manager runs beside the test server, whose CronJobs are still v1beta1)."""
    with kube_.api_client() as api:
        _create(
            api,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            },
        )
        selector = {"matchLabels": {"app": "checkout"}}
        deployment = _create(
            api,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "checkout", "namespace": namespace},
                "spec": {
                    "selector": selector,
                    "template": {**_TEMPLATE, "spec": {"containers": [_CONTAINER]}},
                },
            },
        )
        replicaset = _create(
            api,
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": "checkout-7d9f8",
                    "namespace": namespace,
                    **_owned("Deployment", deployment, "apps/v1"),
                },
                "spec": {
                    "selector": selector,
                    "template": {**_TEMPLATE, "spec": {"containers": [_CONTAINER]}},
                },
            },
        )
        _create(
            api,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "checkout-7d9f8-x2x4q",
                    "namespace": namespace,
                    **_owned("ReplicaSet", replicaset, "apps/v1"),
                },
                "spec": {"containers": [_CONTAINER]},
            },
        )
        cronjob: Any = client.CustomObjectsApi(api).create_namespaced_custom_object(
            "batch",
            "v1beta1",
            namespace,
            "cronjobs",
            {
                "apiVersion": "batch/v1beta1",
                "kind": "CronJob",
                "metadata": {"name": "nightly", "namespace": namespace},
                "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": _TEMPLATE}}},
            },
        )
        _create(
            api,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": "nightly-28000",
                    "namespace": namespace,
                    **_owned("CronJob", cronjob, "batch/v1beta1"),
                },
                "spec": {"template": _TEMPLATE},
            },
        )


def _apply_rbac(kube_: RealKube, namespace: str, without: str = "") -> None:
    """The manifests' namespaced RBAC in ``namespace``, ``without`` one owner-lookup grant."""
    docs: list[dict[str, Any]] = []
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac-namespaced.yaml"):
        for doc in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if doc and name == "rbac-namespaced.yaml":
                doc["metadata"]["namespace"] = namespace
                for rule in doc.get("rules", []):
                    rule["resources"] = [r for r in rule["resources"] if r != without]
                if "rules" in doc:
                    doc["rules"] = [rule for rule in doc["rules"] if rule["resources"]]
            if doc:
                docs.append(doc)
    with kube_.api_client() as api:
        for doc in docs:
            try:
                utils.create_from_dict(api, doc)  # type: ignore[no-untyped-call]
            except utils.FailToCreateError as failure:
                if any(exc.status != 409 for exc in failure.api_exceptions):
                    raise


def _can_get(kube_: RealKube, token: str, path: str) -> bool:
    """Whether ``token`` may GET ``path`` (403: RBAC refuses it)."""
    with kube_.api_client(token) as api:
        method, url, headers, _, _ = api.param_serialize("GET", path, auth_settings=["BearerToken"])
        response = api.call_api(method, url, header_params=headers)
        response.read()
    assert response.status in (200, 403), (path, response.status)
    return bool(response.status == 200)


def _bound(kube_: RealKube, namespace: str, token: str) -> bool:
    """The binding took effect: the Events every variant of the Role grants are readable."""
    return _can_get(kube_, token, f"/api/v1/namespaces/{namespace}/events")


def _resolve(kube_: RealKube, namespace: str, token: str) -> tuple[Workload, Workload, int]:
    """As the forwarder resolves: its own client, from a kubeconfig for ``token``'s user."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = kube_.write_kubeconfig(Path(tmp) / "kubeconfig", token)
        settings = ForwarderSettings(kubeconfig=str(kubeconfig), topic="projects/p/topics/t")
        with kube.api_client(settings) as api:
            resolver = OwnerResolver(kube.owner_fetch(api))
            pod = resolver.resolve(namespace, "Pod", "checkout-7d9f8-x2x4q")
            job = resolver.resolve(namespace, "Job", "nightly-28000")
    return pod, job, resolver.api_calls


def test_the_manifests_rbac_lets_the_forwarder_resolve_pod_and_job_owners(
    real_kube: RealKube, wait_until: Callable[..., None]
):
    namespace = new_namespace(real_kube)
    _workloads(real_kube, namespace)
    _apply_rbac(real_kube, namespace)
    token = real_kube.forwarder_token()
    wait_until(lambda: _bound(real_kube, namespace, token), what="the binding to take effect")

    pod, job, calls = _resolve(real_kube, namespace, token)

    assert pod == Workload(namespace=namespace, kind="Deployment", name="checkout")
    assert job == Workload(namespace=namespace, kind="CronJob", name="nightly")
    assert calls == 3
    # exactly what is read: the controllers the ownerReferences name are not readable
    assert not _can_get(
        real_kube, token, f"/apis/apps/v1/namespaces/{namespace}/deployments/checkout"
    )
    assert not _can_get(
        real_kube, token, f"/apis/batch/v1beta1/namespaces/{namespace}/cronjobs/nightly"
    )


@pytest.mark.parametrize("without", ["pods", "replicasets", "jobs"])
def test_each_owner_lookup_grant_is_needed(
    real_kube: RealKube, wait_until: Callable[..., None], without: str
):
    namespace = new_namespace(real_kube)
    _workloads(real_kube, namespace)
    _apply_rbac(real_kube, namespace, without=without)
    token = real_kube.forwarder_token()
    wait_until(lambda: _bound(real_kube, namespace, token), what="the binding to take effect")

    pod, job, _ = _resolve(real_kube, namespace, token)

    checkout = Workload(namespace=namespace, kind="Deployment", name="checkout")
    nightly = Workload(namespace=namespace, kind="CronJob", name="nightly")
    # no owner data where a grant is missing (the forwarder falls back to the name heuristic)
    assert pod == (Workload() if without in ("pods", "replicasets") else checkout)
    assert job == (Workload() if without == "jobs" else nightly)
