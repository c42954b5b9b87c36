"""Workload identity shared by the sources: the Pub/Sub attributes the forwarder sets from owner
references, and the name heuristic used when there is no owner data.

The heuristic is a guess and says so (``Workload.inferred``): a Deployment's Pods are named
``<deployment>-<pod-template-hash>-<5 chars>`` and a StatefulSet's ``<statefulset>-<ordinal>``.
Generated parts use Kubernetes' vowel-free alphabet, which keeps words such as ``exporter`` out of
the match. A single generated suffix (DaemonSet and Job Pods alike) names no kind, so such Pods
get a workload only from owner data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

from khook_core.event import Workload

# Pub/Sub attributes of a forwarded Event whose owners the forwarder resolved (docs/forwarder.md).
ATTR_WORKLOAD_KIND: Final = "khook.workload.kind"
ATTR_WORKLOAD_NAME: Final = "khook.workload.name"
ATTR_WORKLOAD_NAMESPACE: Final = "khook.workload.namespace"

NO_WORKLOAD: Final = Workload()
"""The empty workload (frozen, so one instance serves every event without one)."""

_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_REPLICASET: Final = re.compile(rf"^(?P<name>.+)-{_SAFE}{{5,10}}$")
_POD: Final = re.compile(rf"^(?:(.+)-{_SAFE}{{5,10}}-{_SAFE}{{5}}|(.+)-\d+)$")
"""A Deployment's Pod name (group 1), else a StatefulSet's (group 2): an alternation tries each
in full before the next, so one match call does what one per kind did."""
_POD_KINDS: Final = ("", "Deployment", "StatefulSet")


@functools.lru_cache(maxsize=4096)
def infer_from_pod(namespace: str, pod: str, cluster: str = "") -> Workload:
    """The workload a Pod's name suggests, marked ``inferred``; empty when the name says nothing."""
    match = _POD.match(pod)
    if match is None:
        return NO_WORKLOAD
    group = match.lastindex or 0
    return Workload.trusted(cluster, namespace, _POD_KINDS[group], match[group], inferred=True)


def infer(namespace: str, kind: str, name: str, cluster: str = "") -> Workload:
    """The workload of any object: a Pod or ReplicaSet by name (inferred), a controller as
    itself, anything else none."""
    if kind == "Pod":
        return infer_from_pod(namespace, name, cluster)
    if kind == "ReplicaSet":
        match = _REPLICASET.match(name)
        if match:
            return Workload.trusted(cluster, namespace, "Deployment", match["name"], inferred=True)
        return NO_WORKLOAD
    if kind in CONTROLLER_KINDS:
        return Workload(cluster=cluster, namespace=namespace, kind=kind, name=name)
    return NO_WORKLOAD


CONTROLLER_KINDS: Final = frozenset(
    ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet")
)
"""Kinds that are workloads in their own right (a Job or ReplicaSet without an owner is one)."""


def from_attributes(
    attributes: Mapping[str, str], cluster: str = "", namespace: str = ""
) -> Workload:
    """The workload the forwarder resolved from owner references, or empty."""
    kind = attributes.get(ATTR_WORKLOAD_KIND, "")
    name = attributes.get(ATTR_WORKLOAD_NAME, "")
    if not (kind and name):
        return NO_WORKLOAD
    return Workload(
        cluster=cluster,
        namespace=attributes.get(ATTR_WORKLOAD_NAMESPACE) or namespace,
        kind=kind,
        name=name,
    )
