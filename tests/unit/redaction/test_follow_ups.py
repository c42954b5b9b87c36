"""Follow-ups: events storm control holds back carry no credential into their backlog, nor
into the run the sweep starts for them later (its prompt, request and held-back summary)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.pipeline import run_pipeline, sweep
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config, restart_hook
from tests.support.credentials import corpus
from tests.support.k8s_events import core_event
from tests.support.storm import START, held_back

CORPUS = [c for c in corpus() if "\n" not in c.text]  # an event message is one line
GROUPED = restart_hook(
    name="web",
    prompt="Pod {{.ResourceName}} keeps restarting: {{.EventMessage}}",
    extensions="coalesce: {window: 5m}",
)


def leaks(text: str) -> dict[str, list[str]]:
    found = {c.name: c.leaks(text) for c in CORPUS}
    return {name: parts for name, parts in found.items() if parts}


def test_held_back_events_and_the_sweep_run_carry_no_credential(tmp_path: Path) -> None:
    clock = Clock(START)
    store = MemoryStateStore()
    dispatcher = DryRunDispatcher()
    runtime = Runtime.build(
        Settings(config_dir=make_config(tmp_path, GROUPED), dispatch="dry-run"),
        clock=clock,
        store=store,
        dispatcher=dispatcher,
    )
    decisions = []
    for minute, credential in enumerate(CORPUS[:4]):
        clock.fixed = START + timedelta(minutes=minute * 0.5)
        pod = f"web-7d9f8c6b5-{'bcdf'[minute]}bbbb"
        raw = core_event(
            name=pod,
            namespace="shop",
            message=f"Back-off restarting failed container app: {credential.text}",
            last=clock.fixed.strftime("%Y-%m-%dT%H:%M:%SZ"),
            uid=f"{pod}-{minute}",
        )
        decisions += run_pipeline("kubernetes", raw, {}, runtime=runtime)
    assert [d.decision for d in decisions] == ["dispatched", "coalesced", "coalesced", "coalesced"]
    backlogs = repr(store.__dict__)  # what the held-back events left in the store
    assert "[redacted:" in backlogs
    assert leaks(backlogs) == {}

    clock.fixed = START + timedelta(minutes=6)
    [run] = sweep(runtime=runtime)

    assert run.decision == "dispatched"
    summary = held_back(run)
    assert summary is not None
    assert summary["count"] == 3
    assert run.prompt is not None
    assert "[redacted:" in run.prompt
    outputs = {
        "sweep prompt": run.prompt,
        "held-back summary": json.dumps(summary),
        "requests": "\n".join(r.prompt + r.event.model_dump_json() for r in dispatcher.requests),
        "audit records": repr(store.firings()),
    }
    assert {where: leaks(text) for where, text in outputs.items() if leaks(text)} == {}
    runtime.close()
