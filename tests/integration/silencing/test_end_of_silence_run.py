"""When a silence ends, what it held back reaches the agent (the a2a-sdk test agent) in one run
per hook, through the sweep; events still firing then fire on their own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from khook_core.dispatch.routing import RoutingDispatcher
from khook_core.pipeline import run_pipeline, sweep
from khook_core.runtime import Clock, Runtime
from khook_core.settings import DispatchSettings, Settings
from khook_core.silencing.gate import SilenceGate
from khook_core.state.base import SilenceRecord
from khook_core.state.silence_sqlite import SqliteSilenceStore
from khook_core.state.sqlite import SqliteStateStore
from tests.support.a2a_agent import AGENT_NAME, AGENT_NAMESPACE, TestAgent
from tests.support.configdir import make_config, restart_hook
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
HOOKS = (
    restart_hook(agent=AGENT_NAME, agent_namespace=AGENT_NAMESPACE, name="web-restarts")
    + "---\n"
    + restart_hook(
        agent=AGENT_NAME,
        agent_namespace=AGENT_NAMESPACE,
        name="audit-restarts",
        prompt="Record the restart of {{.ResourceName}}.",
    )
)
PODS = ["web-0", "web-1", "web-2", "web-3"]


def held_back(text: str) -> dict[str, Any]:
    start = text.index("\n{", text.index("<<<KHOOK_EVENT_DATA")) + 1
    data: dict[str, Any] = json.loads(text[start : text.index("\n<<<END_KHOOK_EVENT_DATA")])
    return dict(data["held_back"])


def test_the_end_of_a_silence_is_one_run_per_hook_and_the_still_firing_fire_again(
    tmp_path: Path, a2a_agent: TestAgent
) -> None:
    state = tmp_path / "state.db"
    silences = SqliteSilenceStore(state)
    clock = Clock(NOW)
    runtime = Runtime.build(
        Settings(config_dir=make_config(tmp_path, HOOKS), state=f"sqlite:{state}"),
        clock=clock,
        store=SqliteStateStore(state),
        dispatcher=RoutingDispatcher(DispatchSettings(kagent_api_url=a2a_agent.base_url)),
    )
    runtime.silences = SilenceGate(lambda: SqliteSilenceStore(state), interval=0)
    silences.add_silence(
        silence=SilenceRecord(
            id="mig-1",
            matcher='event.resource.namespace == "shop"',
            author="ana",
            comment="db migration",
            starts_at=NOW - timedelta(minutes=5),
            ends_at=NOW + timedelta(hours=1),
            created_at=NOW,
        )
    )
    try:
        for pod in PODS:
            found = run_pipeline("kubernetes", core_event(name=pod, uid=pod), {}, runtime=runtime)
            assert {d.decision for d in found} == {"suppressed:silenced"}
        assert sweep(runtime=runtime) == []  # still in force
        assert a2a_agent.runs == []

        silences.expire_silence(id="mig-1", now=NOW + timedelta(minutes=20), by="ana")
        clock.fixed = NOW + timedelta(minutes=21)
        runs = sweep(runtime=runtime)
        assert sorted((d.decision, d.hook) for d in runs) == [
            ("dispatched", "shop/audit-restarts"),
            ("dispatched", "shop/web-restarts"),
        ]
        assert len(a2a_agent.runs) == 2  # one per hook, not one per held event
        for run in a2a_agent.runs:
            assert "held back by silence mig-1" in run.text
            summary = held_back(run.text)
            assert summary["count"] == len(PODS)
            assert sorted(summary["resources"]) == [f"shop/Pod/{pod}" for pod in PODS]
        assert sweep(runtime=runtime) == []  # owed once

        # A pod still crash-looping after the end fires normally: nothing was claimed for it.
        found = run_pipeline(
            "kubernetes",
            core_event(name="web-0", uid="web-0", count=9, last="2026-01-05T10:55:30Z"),
            {},
            runtime=runtime,
        )
        assert {d.decision for d in found} == {"dispatched"}
        assert len(a2a_agent.runs) == 4
    finally:
        runtime.close()
        silences.close()
