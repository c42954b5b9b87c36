"""Console test data written by real pipeline runs, and the console function serving it.

``record_scenario`` runs Kubernetes Events through ``run_pipeline`` with a real A2A agent and a
refused port as the two hooks' agents, so the store holds what production would: dispatched
firings with task ids, runs storm control's rate limit suppressed (and their backlog), failed
dispatches with their error text, and a circuit's failure count.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from khook_core.pipeline import run_pipeline
from khook_core.runtime import Runtime
from khook_core.settings import Settings
from tests.support.configdir import make_config
from tests.support.functions import FunctionServer
from tests.support.k8s_events import core_event

TOKEN = "console-test-token"
RESTARTS = 6
"""Pod restarts recorded; the hook's rate limit lets ``RATE_LIMIT`` of them run."""
RATE_LIMIT = 4
OOMS = 3
"""OOM kills sent to an agent whose port refuses connections: each fails."""


def hooks_yaml(agent_url: str, dead_url: str) -> str:
    return f"""\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: restarts, namespace: shop}}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentUrl: {agent_url}
    rateLimit: {{runs: {RATE_LIMIT}, per: 1h}}
    prompt: "Pod {{{{.ResourceName}}}} restarted"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: oom, namespace: shop}}
spec:
  eventConfigurations:
  - eventType: oom-kill
    agentUrl: {dead_url}
    prompt: "Pod {{{{.ResourceName}}}} ran out of memory"
"""


def refused_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def _z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class Scenario:
    """What was written, and how to reach it again."""

    config: Path
    state: str
    env: dict[str, str]
    restarts_at: list[datetime] = field(default_factory=list)
    ooms_at: list[datetime] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)

    def runtime(self, clock: Callable[[], datetime]) -> Runtime:
        settings = Settings.from_env(
            {"KHOOK_CONFIG_DIR": str(self.config), "KHOOK_STATE": self.state}
        )
        return Runtime.build(settings, clock=clock)


def firestore_env() -> dict[str, str]:
    """A project of its own on the emulator: other tests empty ``demo-khook``, not this."""
    return {"GOOGLE_CLOUD_PROJECT": f"demo-console-{uuid.uuid4().hex[:8]}"}


def record_scenario(
    tmp: Path, *, agent_url: str, state: str, env: dict[str, str], now: datetime
) -> Scenario:
    """Restarts two hours before ``now`` (hour-aligned, a minute apart); OOM kills in the last
    ten minutes, so they count as the last hour's errors."""
    config = make_config(tmp, hooks_yaml(agent_url, refused_url()))
    scenario = Scenario(config, state, env)
    base = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    times = [base + timedelta(minutes=1 + i) for i in range(RESTARTS)]
    times += [now - timedelta(minutes=10 - i) for i in range(OOMS)]
    clock = [times[0]]
    runtime = scenario.runtime(lambda: clock[0])
    try:
        for i, at in enumerate(times):
            clock[0] = at
            restart = i < RESTARTS
            event = core_event(
                reason="BackOff" if restart else "OOMKilling",
                name=f"web-{i}" if restart else f"db-{i}",
                uid=f"uid-{i}",
                first=_z(at),
                last=_z(at),
                created=_z(at),
            )
            for decision in run_pipeline("kubernetes", event, {}, runtime=runtime):
                scenario.decisions.append(decision.decision)
                if decision.task_id:
                    scenario.task_ids.append(decision.task_id)
            (scenario.restarts_at if restart else scenario.ooms_at).append(at)
    finally:
        runtime.close()
    return scenario


def restart_event(i: int, at: datetime) -> dict[str, Any]:
    """Another pod restart (``web-<i>``) at ``at``."""
    return core_event(name=f"web-{i}", uid=f"uid-{i}", first=_z(at), last=_z(at), created=_z(at))


def start_console(log_path: Path, scenario: Scenario, **extra: str) -> FunctionServer:
    """functions/console under functions-framework on the scenario's store and config."""
    env = {
        "KHOOK_CONFIG_DIR": str(scenario.config),
        "KHOOK_STATE": scenario.state,
        "KHOOK_CONSOLE_TOKEN": TOKEN,
        **scenario.env,
        **extra,
    }
    return FunctionServer("console", log_path, env, "http").start()
