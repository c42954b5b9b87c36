"""Silences: what muting costs each event, in the same run as the pipeline's own cost.

The per-event silence check (``SilenceGate.check``, called once per matched hook before the
claim) in the steady state (no read due), measured over one normalised event for:

* nothing muting (the usual case: the check returns at once);
* ten active silences that do not match (each matcher is one compiled CEL condition);
* one maintenance window (its open occurrence cached until the window's next boundary);

each per call and as a share of one event through ``run_pipeline`` (dry-run, memory state)
measured in the same process. There is no budget of its own: the figures explain how much of
the pipeline budget (benchmarks/pipeline.py) muting may take.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure  # noqa: E402

from khook_core.dispatch.dryrun import DryRunDispatcher  # noqa: E402
from khook_core.pipeline import run_pipeline  # noqa: E402
from khook_core.runtime import Clock, Runtime, load_config  # noqa: E402
from khook_core.settings import Settings  # noqa: E402
from khook_core.silencing.gate import SilenceGate  # noqa: E402
from khook_core.silencing.windows import Windows  # noqa: E402
from khook_core.state.base import SilenceRecord  # noqa: E402
from khook_core.state.memory import MemoryStateStore  # noqa: E402
from khook_core.state.silence_memory import MemorySilenceStore  # noqa: E402

CALLS = 200_000
EVENTS = 20_000
WINDOW = """\
maintenanceWindows:
  - name: sunday-batch
    schedule: "0 2 * * SUN"
    timeZone: Europe/Berlin
    duration: 2h
    matcher: 'event.resource.namespace.startsWith("batch-")'
"""


def per_call(fn: object, calls: int = CALLS) -> float:
    """Microseconds per call, best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.mkdir()
        for name in ("event-mappings.yaml", "plugins.yaml"):
            (config / name).write_text((REPO / "config" / name).read_text())
        (config / "hooks").mkdir()
        (config / "hooks" / "hooks.yaml").write_text(
            (REPO / "config" / "hooks" / "example-hooks.yaml").read_text()
        )
        (config / "budgets.yaml").write_text(WINDOW)
        windows = load_config(config).windows
        runtime = Runtime.build(
            Settings(config_dir=config, state="memory", dispatch="dry-run"),
            clock=Clock(now),
            store=MemoryStateStore(),
            dispatcher=DryRunDispatcher(),
        )
        raw = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default", "uid": "u1"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0"},
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "type": "Warning",
            "count": 3,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
        }
        [event] = runtime.config.sources.get("kubernetes").normalize(raw, {})
        started = time.perf_counter()
        for _ in range(EVENTS):  # duplicates after the first: the storm path
            run_pipeline("kubernetes", raw, {}, runtime=runtime)
        pipeline_us = (time.perf_counter() - started) / EVENTS * 1e6
        runtime.close()

    empty = MemorySilenceStore()
    quiet = SilenceGate(lambda: empty, interval=3600)
    busy_store = MemorySilenceStore()
    for i in range(10):
        busy_store.add_silence(
            silence=SilenceRecord(
                id=f"s{i}",
                matcher=f'event.resource.namespace == "payments-{i}"',
                author="bench",
                comment="",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=1),
                created_at=now,
            )
        )
    busy = SilenceGate(lambda: busy_store, interval=3600)
    none = Windows()
    cases = {
        "nothing muting": lambda: quiet.check("default/pod-health", event, now, none),
        "10 non-matching silences": lambda: busy.check("default/pod-health", event, now, none),
        "1 maintenance window (closed)": lambda: quiet.check(
            "default/pod-health", event, now, windows
        ),
    }
    print(f"  one event through run_pipeline: {pipeline_us:.2f} us")
    for name, check in cases.items():
        check()  # the first call reads the store
        us = per_call(check, CALLS if name == "nothing muting" else CALLS // 10)
        figure(f"silence check, {name}", us, "us/event", "-", None)
        figure(f"silence check, {name}, share of one event", us / pipeline_us * 100, "%", "-", None)


if __name__ == "__main__":
    main()
