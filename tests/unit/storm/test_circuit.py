"""After the cool-down an open circuit lets one run probe the agent, not every instance."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from khook_core.dispatch.base import DispatchRequest, DispatchResult
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import TransientError
from khook_core.pipeline import Decision, run_pipeline
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config, restart_hook
from tests.support.k8s_events import core_event
from tests.support.storm import START
from tests.unit.storm.test_sweep import build

HOOK = restart_hook(name="web", prompt="Pod {{.ResourceName}} keeps restarting.")


def raw(pod: str, minute: float) -> dict[str, Any]:
    stamp = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return core_event(name=f"{pod}-7d9f8c6b5-bbbbb", namespace="shop", last=stamp, uid=pod)


class Agent(DryRunDispatcher):
    """Down for the first ``down`` calls; ``during`` runs while a call is in flight."""

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down
        self.calls = 0
        self.during: Any = None

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        self.calls += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if self.calls <= self.down:
            raise TransientError("agent down")
        return super().dispatch(request)


def test_one_probe_at_a_time_after_the_cool_down_and_success_closes_the_circuit(
    tmp_path: Path,
):
    config = make_config(tmp_path, HOOK)
    (config / "budgets.yaml").write_text("circuitBreaker: {failures: 2, coolDown: 1m}\n")
    agent = Agent(down=2)
    runtime, clock = build(config, MemoryStateStore(), agent)

    def deliver(pod: str, minute: float) -> Decision:
        clock.fixed = START + timedelta(minutes=minute)
        (decision,) = run_pipeline("kubernetes", raw(pod, minute), {}, runtime=runtime)
        return decision

    assert [deliver(p, 0).decision for p in ("a", "b")] == ["failed:transient"] * 2  # opens
    assert deliver("c", 0.5).detail == "circuit open for kagent/k8s-agent"
    # After the cool-down: while the first event's run probes the agent, another is held.
    meanwhile: list[Decision] = []
    agent.during = lambda: meanwhile.append(deliver("d", 1.5))
    probe = deliver("c", 1.5)

    assert probe.decision == "dispatched"
    [held] = meanwhile
    assert (held.decision, held.retryable) == ("failed:circuit-open", True)
    assert "another event is probing" in held.detail
    assert agent.calls == 3  # the held event never reached the agent
    assert deliver("d", 1.6).decision == "dispatched"  # the probe's success closed the circuit
