"""What telemetry costs: at the cold start, and on the pipeline's hot path.

Budget (issue [console], point 3): with ``KHOOK_TELEMETRY`` on, a function's cold start grows by
at most 10 ms; with it off, by nothing (no OpenTelemetry module is imported at all).

* **cold start** — ``functions/kubernetes`` in a fresh process: ``import main`` and one Pub/Sub
  delivery handled (memory state, dry-run dispatch), timed inside the process after
  ``import functions_framework``; ``ROUNDS`` processes each for ``off`` and ``console`` (spans
  printed to a discarded stdout: the SDK and a processor, without a network exporter),
  alternated, medians compared. The SDK loads after the first answer, off the request path
  (``telemetry.deferred``): that load is timed apart, after the cold start.
* **hot path** — the pipeline over the same storm of Kubernetes Events with the no-op
  telemetry and with the SDK (spans dropped by an exporter that keeps nothing, metrics into an
  in-memory reader), best of ``ROUNDS`` rounds each; and the cost of the no-op calls one event
  makes, timed alone, as a share of the pipeline's per-event time.

``KHOOK_BENCH_ROUNDS`` and ``KHOOK_BENCH_EVENTS`` shrink the run for a quick check.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure

from khook_core import telemetry
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings, TelemetrySettings
from khook_core.state.memory import MemoryStateStore

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("KHOOK_BENCH_ROUNDS", "15"))
EVENTS = int(os.environ.get("KHOOK_BENCH_EVENTS", "5000"))
PODS = 500
COLD_START_BUDGET_MS = 10.0
NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
"""The storm's clock: its events were last seen minutes before."""

HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: restarts, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "Pod {{.ResourceName}} restarted ({{.Reason}})."
"""

PROBE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import functions_framework
from cloudevents.http import CloudEvent
start = time.perf_counter()
import main
main.handle(CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished",
                        "source": "//pubsub.googleapis.com/projects/p/topics/t"},
                       json.loads(sys.argv[2])))
elapsed = time.perf_counter() - start
loaded = sum(1 for m in sys.modules if m.split(".")[0] == "opentelemetry")
from khook_core.runtime import get_runtime
telemetry = get_runtime().telemetry
start = time.perf_counter()
getattr(telemetry, "load", lambda: None)()  # what the background thread does after the answer
sdk = time.perf_counter() - start
sys.stderr.write(f"PROBE {elapsed} {loaded} {sdk}\\n")
"""


def k8s_event(i: int, last: str = "2026-01-05T10:31:12Z") -> dict[str, object]:
    pod = f"web-{i % PODS}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{pod}.{i}",
            "namespace": "shop",
            "uid": f"uid-{i}",
            "creationTimestamp": "2026-01-05T10:30:00Z",
        },
        "involvedObject": {
            "kind": "Pod",
            "namespace": "shop",
            "name": pod,
            "uid": f"p-{i}",
            "apiVersion": "v1",
        },
        "reason": "BackOff",
        "message": f"Back-off restarting failed container app in pod {pod}",
        "type": "Warning",
        "count": 1 + i % 7,
        "firstTimestamp": "2026-01-05T10:30:00Z",
        "lastTimestamp": last,
        "source": {"component": "kubelet", "host": "node-3"},
    }


def write_config(where: Path) -> Path:
    config = where / "config"
    (config / "hooks").mkdir(parents=True)
    for name in ("event-mappings.yaml", "plugins.yaml"):
        (config / name).write_text((ROOT / "config" / name).read_text())
    (config / "hooks" / "restarts.yaml").write_text(HOOK)
    return config


def cold_start(config: Path, mode: str) -> tuple[float, int, float]:
    """Seconds from ``import main`` to the first event handled, OpenTelemetry modules loaded
    by then, and seconds of loading the SDK after it (off the request path)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # fresh: the source keeps it
    event = json.dumps(k8s_event(0, last=now)).encode()
    delivery = {
        "message": {
            "data": base64.b64encode(event).decode(),
            "messageId": "1",
            "attributes": {"khook.source": "kubernetes"},
        }
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "KHOOK_STATE": "memory",
        "KHOOK_DISPATCH": "dry-run",
        "KHOOK_CONFIG_DIR": str(config),
        "KHOOK_TELEMETRY": mode,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / "kubernetes"), json.dumps(delivery)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
        timeout=120,
    )
    assert "dispatched" in done.stderr, done.stderr[-2000:]  # the event went all the way
    [line] = [x for x in done.stderr.splitlines() if x.startswith("PROBE ")]
    _, seconds, loaded, sdk = line.split()
    return float(seconds), int(loaded), float(sdk)


class DropSpans:
    """A span exporter that keeps nothing: the SDK's cost without an exporter's."""

    def export(self, spans: Sequence[object]) -> object:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def pipeline_seconds(
    config: Path, raws: list[str], tracing: Callable[[], telemetry.Telemetry]
) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        runtime = Runtime.build(
            Settings(config_dir=config, state="memory", dispatch="dry-run"),
            clock=Clock(NOW),
            store=MemoryStateStore(),
            dispatcher=DryRunDispatcher(),
            telemetry=tracing(),
        )
        start = time.perf_counter()
        for raw in raws:
            run_pipeline("kubernetes", json.loads(raw), {}, runtime=runtime)
        best = min(best, time.perf_counter() - start)
        runtime.close()
    return best


def noop_calls_seconds(n: int) -> float:
    """The telemetry calls one event makes on the pipeline's path (a duplicate: the common case
    in a storm), with the no-op, ``n`` times."""
    t = telemetry.NOOP
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            a = time.time_ns()
            with t.span("receive kubernetes", parent={}, kind="consumer", start_ns=a):
                t.record_span("decode", a, time.time_ns())
                with t.span("normalize"):
                    pass
                if t.enabled:
                    t.event_in("kubernetes")
                c = time.perf_counter()
                with t.span("claim"):
                    pass
                t.claim("kubernetes", time.perf_counter() - c, "held")
                if t.enabled:
                    t.decision("kubernetes", "duplicate")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp))
        print(
            f"cold start of functions/kubernetes, import main + one event, {ROUNDS} processes each"
        )
        cold_start(config, "off")  # warm-up: bytecode caches
        cold_start(config, "console")
        runs: dict[str, list[float]] = {"off": [], "console": []}
        loaded: dict[str, int] = {}
        sdk_loads: list[float] = []
        for _ in range(ROUNDS):
            for mode in runs:
                seconds, modules, sdk = cold_start(config, mode)
                runs[mode].append(seconds)
                loaded[mode] = modules
                if mode == "console":
                    sdk_loads.append(sdk)
        off = statistics.median(runs["off"]) * 1000
        on = statistics.median(runs["console"]) * 1000
        figure(
            "telemetry off: OpenTelemetry modules imported",
            loaded["off"],
            "modules",
            "0",
            loaded["off"] == 0,
        )
        figure("cold start, telemetry off (median)", off, "ms", "-", None)
        figure("cold start, telemetry on (console, median)", on, "ms", "-", None)
        figure(
            "cold start growth with telemetry on",
            on - off,
            "ms",
            f"<= {COLD_START_BUDGET_MS:.0f} ms",
            on - off <= COLD_START_BUDGET_MS,
        )
        paired = statistics.median(
            (on_s - off_s) * 1000 for on_s, off_s in zip(runs["console"], runs["off"], strict=True)
        )
        figure(
            "cold start growth, median of the turns' differences (less noise-prone)",
            paired,
            "ms",
            "-",
            None,
        )
        figure(
            "telemetry on: SDK loaded after the first answer (off the request path, median)",
            statistics.median(sdk_loads) * 1000,
            "ms",
            "-",
            None,
        )

        raws = [json.dumps(k8s_event(i)) for i in range(EVENTS)]
        print(f"pipeline, {EVENTS} Kubernetes Events over {PODS} pods, best of {ROUNDS}")
        quiet = pipeline_seconds(config, raws, lambda: telemetry.NOOP)
        on_s = pipeline_seconds(
            config,
            raws,
            lambda: telemetry.build(
                TelemetrySettings(mode="console"),
                function="kubernetes",
                span_exporter=DropSpans(),
                metric_reader=_memory_reader(),
            ),
        )
        figure("pipeline, telemetry off", EVENTS / quiet, "events/s", "-", None)
        figure("pipeline, telemetry on (SDK, spans dropped)", EVENTS / on_s, "events/s", "-", None)
        figure("pipeline cost with telemetry on over off", on_s / quiet, "x", "-", None)
        calls = noop_calls_seconds(EVENTS)
        figure("telemetry off: no-op calls per event", calls / EVENTS * 1e9, "ns", "-", None)
        figure(
            "telemetry off: no-op calls' share of the pipeline",
            calls / quiet * 100,
            "%",
            "~0",
            None,
        )
    return 0


def _memory_reader() -> object:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    return InMemoryMetricReader()


if __name__ == "__main__":
    sys.exit(main())
