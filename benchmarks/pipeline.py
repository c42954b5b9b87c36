"""Pipeline throughput: Kubernetes Events, one core, dry-run dispatch, memory state.

Budget: >= 20,000 events/s, and <= 3x the floor measured in the same run: the cost of
``json.loads`` + ``Event.model_validate`` on the same payloads.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.event import Event
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.memory import MemoryStateStore

N = 20_000
ROUNDS = 5
NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
REASONS = [
    ("BackOff", "Back-off restarting failed container app"),
    ("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500"),
    ("FailedScheduling", "0/3 nodes are available: 3 Insufficient memory."),
    ("OOMKilling", "Memory cgroup out of memory: Killed process 4242"),
]


def payloads() -> list[str]:
    out = []
    for i in range(N):
        reason, message = REASONS[i % len(REASONS)]
        ns = f"team-{i % 20}"
        out.append(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "name": f"web-{i}.18a2f",
                        "namespace": ns,
                        "uid": f"uid-{i}",
                        "resourceVersion": str(48213 + i),
                        "creationTimestamp": "2026-01-05T10:30:00Z",
                    },
                    "involvedObject": {
                        "kind": "Pod",
                        "namespace": ns,
                        "name": f"web-{i % 2000}",
                        "uid": f"pod-{i}",
                        "apiVersion": "v1",
                        "fieldPath": "spec.containers{app}",
                    },
                    "reason": reason,
                    "message": message,
                    "type": "Warning",
                    "count": 1 + i % 7,
                    "firstTimestamp": "2026-01-05T10:30:00Z",
                    "lastTimestamp": "2026-01-05T10:31:12Z",
                    "source": {"component": "kubelet", "host": "node-3"},
                    "eventTime": None,
                    "reportingComponent": "kubelet",
                    "reportingInstance": "node-3",
                }
            )
        )
    return out


HOOKS = "".join(
    f"""---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: health, namespace: team-{n}}}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {{name: k8s-agent, namespace: kagent}}
    prompt: "Pod {{{{.ResourceName}}}} restarted ({{{{.Reason}}}}) at {{{{.EventTime}}}}."
  - eventType: probe-failed
    agentRef: {{name: k8s-agent, namespace: kagent}}
    prompt: "Probe of {{{{.ResourceName}}}} failed: {{{{.EventMessage}}}}"
  - eventType: oom-kill
    agentRef: {{name: k8s-agent, namespace: kagent}}
    prompt: "{{{{.ResourceName}}}} ran out of memory."
"""
    for n in range(20)
)


def main() -> int:
    logging.disable(logging.INFO)
    raws = payloads()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp)
        (config / "hooks").mkdir()
        repo = Path(__file__).resolve().parents[1]
        (config / "event-mappings.yaml").write_text(
            (repo / "config" / "event-mappings.yaml").read_text()
        )
        (config / "hooks" / "hooks.yaml").write_text(HOOKS)
        settings = Settings(config_dir=config, state="memory", dispatch="dry-run")

        # Event dicts the floor validates: what the pipeline builds from the same payloads.
        probe = Runtime.build(
            settings, clock=Clock(NOW), store=MemoryStateStore(), dispatcher=DryRunDispatcher()
        )
        source = probe.config.sources.get("kubernetes")
        event_dicts = [source.normalize(json.loads(r), {})[0].model_dump() for r in raws]

        floor_times, pipe_times, counts = [], [], {}
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for raw, event in zip(raws, event_dicts, strict=True):
                json.loads(raw)
                Event.model_validate(event)
            floor_times.append(time.perf_counter() - start)

            runtime = Runtime.build(
                settings, clock=Clock(NOW), store=MemoryStateStore(), dispatcher=DryRunDispatcher()
            )
            counts = {}
            start = time.perf_counter()
            for raw in raws:
                for d in run_pipeline("kubernetes", json.loads(raw), {}, runtime=runtime):
                    counts[d.decision] = counts.get(d.decision, 0) + 1
            pipe_times.append(time.perf_counter() - start)

    # Best of the rounds for both, as timeit does: the least disturbed run of each.
    floor, pipe = min(floor_times), min(pipe_times)
    rate = N / pipe
    print(
        f"pipeline throughput ({N:,} Kubernetes Events, best of {ROUNDS} rounds, "
        f"decisions: {counts})"
    )
    figure(
        "pipeline events/s (one core, dry-run, memory state)",
        rate,
        "ev/s",
        ">= 20,000",
        rate >= 20_000,
    )
    figure("floor: json.loads + Event.model_validate, events/s", N / floor, "ev/s", "-", None)
    figure("pipeline cost / floor cost", pipe / floor, "x", "<= 3.0", pipe / floor <= 3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
