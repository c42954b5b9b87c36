"""The project's Hook CRD is khook's, plus exactly ``status.conditions`` and printer columns.

The API server prunes status fields its schema does not declare, so the ``Ready`` condition
needs the schema; anything more would break the promise that every khook Hook is valid here
(checked against a real API server in tests/integration/forwarder/test_hook_status_real_api.py).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.support.paths import REPO

PROJECT_CRD = REPO / "config" / "k8s" / "hooks.kagent.dev.crd.yaml"
COMPAT_CRD = REPO / "tests" / "data" / "compat" / "kagent.dev_hooks.crd.yaml"


def load(path: Any) -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert isinstance(doc, dict)
    return doc


def test_the_project_crd_is_the_compat_crd_plus_conditions_and_printer_columns():
    project, compat = load(PROJECT_CRD), load(COMPAT_CRD)
    [version] = project["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]

    conditions = status.pop("conditions")
    columns = version.pop("additionalPrinterColumns")

    assert project == compat
    assert conditions["type"] == "array"
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert sorted(item["required"]) == sorted(
        ["lastTransitionTime", "message", "reason", "status", "type"]
    )
    assert set(item["properties"]) == set(item["required"]) | {"observedGeneration"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert [(c["name"], c["type"]) for c in columns] == [
        ("Ready", "string"),
        ("Last Fired", "date"),
        ("Age", "date"),
    ]
    assert columns[0]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns[1]["jsonPath"] == ".status.activeEvents[0].lastSeen"


def test_the_crd_accepts_the_status_the_forwarder_renders():
    """Every field of a rendered status is declared (none would be pruned)."""
    from datetime import UTC, datetime

    from khook_core.forwarder.hook_status import HookActivity, Verdict, render
    from khook_core.state.base import DedupKey, Firing

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    activity = HookActivity()
    activity.fold(
        Firing(
            DedupKey("k"),
            "shop/web",
            "e1",
            "pod-restart",
            "kubernetes",
            "shop/Pod/web-1",
            "kagent/k8s-agent",
            "h",
            "dispatched",
            now,
            task_id="t-1",
        )
    )
    status = render(Verdict(), activity, {"metadata": {"generation": 1}}, now)
    [version] = copy.deepcopy(load(PROJECT_CRD))["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]

    assert set(status) <= set(schema["properties"])
    [event] = status["activeEvents"]
    assert set(event) == set(schema["properties"]["activeEvents"]["items"]["properties"])
    [ready] = status["conditions"]
    assert set(ready) == set(schema["properties"]["conditions"]["items"]["properties"])
