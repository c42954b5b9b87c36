"""Task tracking: what one sweep tick costs with 10,000 open tasks, and what a dispatch pays.

* **listing the due tasks**: ``TaskStore.due_tasks`` (the batch of one tick, 200, leased out
  of 10,000 open tasks) on SQLite and in memory: the store read of a tick;
* **one tick**: ``tracker.tick`` over that batch against the local stack's demo agent (stdlib
  HTTP on loopback, both wires): the store reads and writes plus one ``GetTask`` per task. A
  tick has to fit the sweep function's invocation budget (50 s) with room to spare;
* **the dispatch path**: ``tracker.start`` for a dry-run result (what benchmarks/pipeline.py
  measures: no task, so nothing is stored), per call: tracking stays off the hot path, and
  the pipeline ratio is not changed by it.

``KHOOK_BENCH_TRACK_TASKS`` (default 10,000) and ``KHOOK_BENCH_TRACK_TICKS`` (default 5) shrink
the run.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure  # noqa: E402

from khook_core.dispatch.base import DispatchRequest, DispatchResult  # noqa: E402
from khook_core.dispatch.dryrun import DryRunDispatcher  # noqa: E402
from khook_core.runtime import Runtime, TaskHandle, load_config  # noqa: E402
from khook_core.settings import Settings  # noqa: E402
from khook_core.state.base import DedupKey, TaskStore, TrackedTask  # noqa: E402
from khook_core.state.memory import MemoryStateStore  # noqa: E402
from khook_core.state.task_memory import MemoryTaskStore  # noqa: E402
from khook_core.state.task_sqlite import SqliteTaskStore  # noqa: E402
from khook_core.target import Target  # noqa: E402
from khook_core.tracking import tracker  # noqa: E402
from khook_local.agent import DemoAgent  # noqa: E402

TASKS = int(os.environ.get("KHOOK_BENCH_TRACK_TASKS", "10000"))
TICKS = int(os.environ.get("KHOOK_BENCH_TRACK_TICKS", "5"))
BATCH = 200
LIST_BUDGET_MS = 100.0
"""The store read of a tick: a fifth of a percent of the sweep's invocation budget (50 s)."""
TICK_BUDGET_S = 5.0
"""A tick of one batch within a tenth of the sweep's invocation budget (50 s)."""
START_BUDGET_US = 2.0
"""The dry-run path of ``tracker.start`` per dispatch: nothing measurable beside an event's
pipeline cost (about 50 µs at the pipeline budget's 20,000 events/s)."""
NOW = datetime.now(UTC)


def open_tasks(store: TaskStore, endpoint: str, agent: DemoAgent, wire: str) -> None:
    """``TASKS`` open tasks, all due; every task id is a real task of the demo agent."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage" if wire == "1.0" else "message/send",
        "params": {},
    }
    for n in range(TASKS):
        message = {"messageId": f"m-{n}", "contextId": f"c-{n}", "parts": [{"text": "p"}]}
        if wire == "1.0":
            message["role"] = "ROLE_USER"
        else:
            message |= {"kind": "message", "role": "user", "parts": [{"kind": "text", "text": "p"}]}
        body["params"] = {"message": message}
        answer = agent.answer("kagent/k8s-agent", json.dumps(body).encode(), {"a2a-version": wire})
        result = answer["result"]
        task_id = result["task"]["id"] if wire == "1.0" else result["id"]
        store.track_task(
            task=TrackedTask(
                task_id=task_id,
                endpoint=endpoint,
                wire=wire,
                context_id=f"c-{n}",
                key=DedupKey(f"k-{n}"),
                hook="shop/web",
                event_id=f"e-{n}",
                event_type="pod-restart",
                source="kubernetes",
                resource=f"shop/Pod/web-{n}",
                agent="kagent/k8s-agent",
                state="submitted",
                created_at=NOW,
                deadline=NOW + timedelta(hours=1),
                next_check=NOW - timedelta(seconds=n % 600),
            )
        )


def list_cost(name: str, store: TaskStore) -> None:
    samples = []
    now = NOW
    for _ in range(TICKS):
        started = time.perf_counter()
        got = store.due_tasks(now=now, limit=BATCH, lease=timedelta(minutes=1))
        samples.append((time.perf_counter() - started) * 1000)
        assert len(got) == BATCH, len(got)
    ms = statistics.median(samples)
    figure(
        f"tracking: due_tasks, {BATCH} of {TASKS:,} open ({name}), median",
        ms,
        "ms",
        f"<= {LIST_BUDGET_MS:g} ms",
        ms <= LIST_BUDGET_MS,
    )


def tick_cost(name: str, store: TaskStore, agent_url: str) -> None:
    env = {
        "KHOOK_STATE": "memory",
        "KHOOK_CONFIG_DIR": str(REPO / "config"),
        "KAGENT_API_URL": agent_url,
        "KHOOK_TRACK_BATCH": str(BATCH),
        "KHOOK_LOG_LEVEL": "WARNING",
    }
    settings = Settings.from_env(env)
    runtime = Runtime(
        settings=settings,
        config=load_config(settings.config_dir),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
        clock=lambda: NOW + timedelta(hours=0, seconds=1),
        tasks=TaskHandle(store),
    )
    samples = []
    for _ in range(TICKS):
        started = time.perf_counter()
        tally = tracker.tick(runtime)
        samples.append(time.perf_counter() - started)
        assert sum(tally.values()) == BATCH, tally
    s = statistics.median(samples)
    figure(
        f"tracking: one tick, {BATCH} tasks asked of {TASKS:,} open ({name}), median",
        s,
        "s",
        f"<= {TICK_BUDGET_S:g} s",
        s <= TICK_BUDGET_S,
    )
    figure(f"tracking: per task asked ({name})", s / BATCH * 1000, "ms", "n/a", None)


def start_cost() -> None:
    settings = Settings.from_env({"KHOOK_STATE": "memory"})
    runtime = Runtime(
        settings=settings,
        config=load_config(REPO / "config"),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
        clock=lambda: NOW,
        tasks=TaskHandle(MemoryTaskStore()),
    )
    result = DispatchResult(task_id="", state="dry-run")
    request = DispatchRequest(
        event=None,
        hook="shop/web",  # type: ignore[arg-type]
        target=Target("agent", "k8s-agent", "kagent"),
        prompt="p",
        key=DedupKey("k"),
        message_id="m",
        context_id="c",
    )
    rule = runtime.config.hooks.rules[0]
    calls = 200_000
    started = time.perf_counter()
    for _ in range(calls):
        tracker.start(runtime, request, result, rule)
    us = (time.perf_counter() - started) / calls * 1e6
    figure(
        "tracking: tracker.start on the dry-run dispatch path, per call",
        us,
        "µs",
        f"<= {START_BUDGET_US:g} µs",
        us <= START_BUDGET_US,
    )


def main() -> None:
    print(f"tracking: {TASKS:,} open tasks, batches of {BATCH}, {TICKS} ticks each")
    agent = DemoAgent(
        Path(tempfile.mkdtemp()) / "prompts.jsonl", out=io.StringIO(), complete_after=3600
    ).start()
    try:
        endpoint = f"{agent.url}/api/a2a/kagent/k8s-agent/"
        with tempfile.TemporaryDirectory() as tmp:
            for name, store in (
                ("memory", MemoryTaskStore()),
                ("sqlite", SqliteTaskStore(Path(tmp) / "state.db")),
            ):
                open_tasks(store, endpoint, agent, "1.0")
                list_cost(name, store)
                tick_cost(name, store, agent.url)
                store.close()
        start_cost()
    finally:
        agent.stop()


if __name__ == "__main__":
    main()
