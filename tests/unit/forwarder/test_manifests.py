"""The deployment artifacts agree with the code: manifests, RBAC, probes, settings, Dockerfile.

No cluster is needed (``kubectl apply --dry-run=client`` still asks the API server for its
schema), so the YAML is checked here against what the forwarder actually reads and serves.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from khook_core.forwarder import cli
from khook_core.forwarder.config import ForwarderSettings
from tests.support.forwarder import REPO

K8S = REPO / "config" / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_documents() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in documents(path):
            found[(doc["kind"], f"{path.stem}/{doc['metadata']['name']}")] = doc
    return found


def one(kind: str, stem: str) -> dict[str, Any]:
    [doc] = [d for (k, key), d in all_documents().items() if k == kind and key.startswith(stem)]
    return doc


def container() -> dict[str, Any]:
    [main] = one("Deployment", "deployment/")["spec"]["template"]["spec"]["containers"]
    assert isinstance(main, dict)
    return main


def test_every_manifest_parses_and_names_its_object():
    docs = all_documents()

    assert {kind for kind, _ in docs} == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "CustomResourceDefinition",
    }
    for doc in docs.values():
        assert doc["apiVersion"]
        # a DNS label, or a DNS subdomain for the CRD (plural.group)
        assert re.fullmatch(
            r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            doc["metadata"]["name"],
        )


@pytest.mark.parametrize(
    ("role", "stem"), [("ClusterRole", "rbac-cluster"), ("Role", "rbac-namespaced")]
)
def test_rbac_reads_events_and_hooks_and_writes_only_hook_status_and_events(role: str, stem: str):
    [events, hooks, status, fired, *owners] = one(role, stem)["rules"]

    assert sorted(events["apiGroups"]) == ["", "events.k8s.io"]
    assert events["resources"] == ["events"]
    assert sorted(events["verbs"]) == ["get", "list", "watch"]
    assert (hooks["apiGroups"], hooks["resources"]) == (["kagent.dev"], ["hooks"])
    assert sorted(hooks["verbs"]) == ["get", "list", "watch"]
    # the status writer's merge patch, and the Fired Event it creates, then patches (count)
    assert (status["apiGroups"], status["resources"], status["verbs"]) == (
        ["kagent.dev"],
        ["hooks/status"],
        ["patch"],
    )
    assert (fired["apiGroups"], fired["resources"], sorted(fired["verbs"])) == (
        [""],
        ["events"],
        ["create", "patch"],
    )
    # owner lookups: get only, on exactly the kinds read (ownerReferences name the rest)
    assert {v for rule in owners for v in rule["verbs"]} == {"get"}
    assert {(g, r) for rule in owners for g in rule["apiGroups"] for r in rule["resources"]} == {
        ("", "pods"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
    }


@pytest.mark.parametrize(
    ("binding", "stem"),
    [("ClusterRoleBinding", "rbac-cluster"), ("RoleBinding", "rbac-namespaced")],
)
def test_bindings_name_the_forwarder_service_account(binding: str, stem: str):
    [subject] = one(binding, stem)["subjects"]
    account = one("ServiceAccount", "serviceaccount")

    assert (subject["name"], subject["namespace"]) == (
        account["metadata"]["name"],
        account["metadata"]["namespace"],
    )


def test_the_service_account_uses_workload_identity():
    annotations = one("ServiceAccount", "serviceaccount")["metadata"]["annotations"]

    assert re.fullmatch(
        r"khook-forwarder@[A-Z_a-z0-9-]+\.iam\.gserviceaccount\.com",
        annotations["iam.gke.io/gcp-service-account"],
    )


def test_the_deployment_runs_as_the_service_account_under_a_restricted_context():
    pod = one("Deployment", "deployment")["spec"]["template"]["spec"]
    security = container()["securityContext"]

    assert pod["serviceAccountName"] == "khook-forwarder"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["enableServiceLinks"] is False


def test_probes_and_port_match_what_the_forwarder_serves():
    main = container()
    [port] = main["ports"]

    assert port["containerPort"] == ForwarderSettings.model_fields["port"].default
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["port"] == port["name"]


PEAK_RSS_MIB = 103
"""The first list of 20,000 Events from a real API server (benchmarks/forwarder_kube.py)."""
"""Peak RSS through the 20,000-event storm of ``benchmarks/forwarder.py`` (docs/benchmarks.md),
measured while forwarding ~5,800 events/s on one core."""


def quantity(value: str | int | float) -> float:
    """A Kubernetes CPU (cores) or memory (MiB) quantity as a number, for the forms used here."""
    text = str(value)
    units = {"m": 0.001, "Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def test_resources_have_requests_and_limits_sized_on_the_storm_benchmark():
    resources = container()["resources"]
    requests, limits = resources["requests"], resources["limits"]

    assert set(requests) == set(limits) == {"cpu", "memory"}
    assert PEAK_RSS_MIB <= quantity(requests["memory"]) <= quantity(limits["memory"])
    assert quantity(limits["memory"]) >= 2 * PEAK_RSS_MIB  # headroom over the measured peak
    # The storm's throughput was measured on one core: a lower limit would throttle it.
    assert quantity(requests["cpu"]) < quantity(limits["cpu"]) == 1


def test_the_grace_period_covers_the_flush_deadline():
    pod = one("Deployment", "deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in container()["env"]}

    assert pod["terminationGracePeriodSeconds"] > float(env["KHOOK_FORWARDER_FLUSH_SECONDS"])


def test_every_environment_variable_is_one_the_forwarder_reads(monkeypatch: pytest.MonkeyPatch):
    env = {e["name"]: e["value"] for e in container()["env"]}
    known = {"GOOGLE_CLOUD_PROJECT", "KHOOK_TOPIC", "KHOOK_CLUSTER"} | {
        f"KHOOK_FORWARDER_{name.upper()}" for name in ForwarderSettings.model_fields
    }

    assert set(env) <= known
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ForwarderSettings.from_env(os.environ)
    assert settings.topic_path() == "projects/PROJECT_ID/topics/khook-kubernetes"
    assert settings.namespaces == ()
    assert settings.log_format == "json"
    assert cli.build_parser().parse_args([]) is not None


def test_kustomization_lists_existing_files_and_the_cluster_wide_mode():
    kustomization = documents(K8S / "kustomization.yaml")[0]

    for resource in kustomization["resources"]:
        assert (K8S / resource).exists()
    assert "rbac-cluster.yaml" in kustomization["resources"]
    assert "rbac-namespaced.yaml" not in kustomization["resources"]


def test_the_dockerfile_builds_a_slim_non_root_forwarder_image():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)

    assert stages
    assert all(image.startswith("python:3.11-slim") for image in stages)
    assert user
    assert user[-1].split(":")[0].isdigit()
    assert int(user[-1].split(":")[0]) != 0
    assert '".[forwarder]"' in text
    assert 'ENTRYPOINT ["khook-forwarder"]' in text
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for source in copied.split():
            assert (REPO / source).exists(), source
