"""``/api/v1/approvals``: the approvals agent tasks wait for, as JSON, in the OpenAPI shape."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from khook_core.console import api, openapi
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.runtime import ApprovalHandle, Clock, Runtime
from khook_core.settings import ConsoleSettings, Settings
from khook_core.state.approval_memory import MemoryApprovalStore
from khook_core.state.base import ApprovalRecord
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import SHOP_HOOK, make_config

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)


def approval(id: str, minutes: int) -> ApprovalRecord:
    return ApprovalRecord(
        id=id,
        task_ref=f"http://agent/ t-{id}",
        task_id=f"t-{id}",
        context_id="c-1",
        endpoint="http://agent/",
        wire="1.0",
        hook="shop/web",
        key="k",
        agent="kagent/k8s-agent",
        kind="tool_approval",
        request='{"type":"tool_approval_request","tools":[{"id":"conf-1","name":"restart_pod"}]}',
        text="Restarting requires approval",
        opened_at=NOW + timedelta(minutes=minutes),
        deadline=NOW + timedelta(minutes=minutes + 60),
    )


def test_open_approvals_are_listed_and_all_1_adds_the_decided(tmp_path: Path) -> None:
    runtime = Runtime.build(
        Settings(config_dir=make_config(tmp_path, SHOP_HOOK), state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    store = MemoryApprovalStore()
    runtime.approvals = ApprovalHandle(store)
    store.open_approval(approval=approval("a1", 0))
    opened, _ = store.open_approval(approval=approval("a2", 5))
    store.update_approval(
        approval=dataclasses.replace(opened, state="rejected", decided_by="ana", decided_at=NOW),
        expect=opened.version,
    )

    listed = api.approvals({}, runtime, ConsoleSettings())["approvals"]
    everything = api.approvals({"all": "1"}, runtime, ConsoleSettings())["approvals"]

    assert [a["id"] for a in listed] == ["a1"]
    assert listed[0]["request"]["tools"][0]["name"] == "restart_pod"
    assert listed[0]["decided_at"] is None
    assert [(a["id"], a["state"], a["decided_by"]) for a in everything] == [
        ("a2", "rejected", "ana"),
        ("a1", "open", ""),
    ]
    assert everything[0]["decided_at"] == "2026-03-25T12:00:00Z"
    schema = openapi.PATHS["/api/v1/approvals"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["properties"]["approvals"]["items"]
    for item in everything:
        assert sorted(item) == schema["required"]
        assert item["state"] in schema["properties"]["state"]["enum"]
