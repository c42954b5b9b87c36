"""The example ``cluster-nodes`` Hook fires for a NotReady Node whichever API recorded it.

The API server files core/v1 Node Events under ``default`` and events.k8s.io/v1 ones under
``kube-system``; an example that listed one namespace would stay silent for the other API.
"""

from __future__ import annotations

import pytest

from khook_core.forwarder.app import load_source
from khook_core.hooks import load_hooks
from tests.support.forwarder import NOW, REPO, event
from tests.support.kube_api import CORE_API, EVENTS_API

EXAMPLE = REPO / "config" / "hooks" / "example-hooks.yaml"


@pytest.mark.parametrize(("api", "namespace"), [(CORE_API, "default"), (EVENTS_API, "kube-system")])
def test_cluster_nodes_fires_for_node_events_of_either_api(api: str, namespace: str):
    source, _ = load_source(REPO / "config", lambda: NOW, need_mapping=True)
    obj = event(
        api,
        reason="NodeNotReady",
        type_="Normal",
        kind="Node",
        object_name="node-1",
        namespace=namespace,
        note="Node node-1 status is now: NodeNotReady",
    )
    hooks = load_hooks([EXAMPLE], known_event_types=None)

    matched = {rule.hook for e in source.normalize(obj, {}) for rule in hooks.match(e)}

    assert "kagent/cluster-nodes" in matched
