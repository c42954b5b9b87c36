"""functions/kubernetes figures: cold start, what it imports, and local end-to-end latency.

Budgets:
* cold start, fresh process, import + first event handled (memory state, local A2A agent):
  median <= 250 ms over >= 10 runs; importing the function (functions_framework, then
  ``main.py``) costs <= 1.20x the floor, ``import functions_framework, pydantic`` in a fresh
  process, spawned in turns with the function's in the same run; and it imports neither
  ``kubernetes`` nor the Pub/Sub client (checked with ``python -X importtime``);
* local end to end, watch → forwarder → emulator → push → function → A2A agent, at 50 events/s:
  p50 <= 150 ms, p99 <= 500 ms.

In the same turns, unbudgeted: the hello-world function (benchmarks/_hello.py) spawned with the
same probe, from spawn to its first event answered: the machine's own floor under the 250 ms.

The A2A agent is the a2a-sdk test agent (tests/support/a2a_agent.py) served in this process.
The end-to-end part needs the Pub/Sub emulator; without it that part is recorded as not measured
(and the run exits 1 when CI=true). ``KHOOK_BENCH_RUNS`` (default 11) sets the cold-start runs.

Cold start runs in turns from the deployed venv (benchmarks/_deployed.py: a plain install of
the archive's requirements.txt, what Cloud Functions runs), whose figures carry the budgets, and
from the development venv, whose figures are printed beside them, labelled and unbudgeted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
import _hello  # noqa: E402
from _deployed import archived_config, deployed_python, warm_bytecode  # noqa: E402
from _report import figure, not_measured  # noqa: E402

from tests.support.a2a_agent import TestAgent, start_agent  # noqa: E402
from tests.support.configdir import restart_hook  # noqa: E402
from tests.support.forwarder import ForwarderProcess  # noqa: E402
from tests.support.functions import FunctionServer  # noqa: E402
from tests.support.kube_api import FakeKubeApi  # noqa: E402
from tests.support.pubsub import PubSubEmulator, find_launcher  # noqa: E402

MAIN = ROOT / "functions" / "kubernetes" / "main.py"
COLD_RUNS = max(2, int(os.environ.get("KHOOK_BENCH_RUNS", "11")))
COLD_BUDGET_MS, IMPORT_RATIO_BUDGET = 250.0, 1.20
RATE = 50  # events/s
E2E_EVENTS, WARM_UP = 500, 10
P50_BUDGET_MS, P99_BUDGET_MS = 150.0, 500.0
HEAVY = re.compile(r"\|\s+(kubernetes|google\.cloud\.pubsub\w*|google\.pubsub_v1|grpc)(\.|$)")
HOOK = restart_hook()
COLD_KEYS = ("cold-start:kubernetes", "module-import:kubernetes")
E2E_KEYS = ("e2e:p50", "e2e:p99")

# Runs in a fresh interpreter: the time it prints is when the first event was answered.
PROBE = """
import time
started = time.perf_counter()
import functions_framework
framework = time.perf_counter()
import json, sys
app = functions_framework.create_app("handle", sys.argv[1], "cloudevent").test_client()
module = time.perf_counter()
status = app.post("/", json=json.loads(sys.argv[2])).status_code
print(json.dumps({"done": time.time(), "status": status, "framework": framework - started,
                  "module": module - framework, "first_event": time.perf_counter() - module}))
"""
FLOOR = """
import time
started = time.perf_counter()
import functions_framework, pydantic
print(time.perf_counter() - started)
"""


def config_dir(tmp: Path) -> Path:
    config = tmp / "config"
    (config / "hooks").mkdir(parents=True)
    for name in ("event-mappings.yaml", "plugins.yaml"):
        (config / name).write_text((ROOT / "config" / name).read_text())
    (config / "hooks" / "shop.yaml").write_text(HOOK)
    return archived_config(config)


def push_body(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(json.dumps(event).encode()).decode(),
            "messageId": "1",
            "attributes": {"khook.source": "kubernetes"},
        },
        "subscription": "projects/p/subscriptions/s",
    }


def cold_start(config: Path, agent: TestAgent, pythons: dict[str, str]) -> bool:
    """Cold start in each venv, in turns with the floor and the hello-world function (the
    machine's own spawn → first answer, the same probe); budgets on the deployed venv's figures
    only."""
    hello = _hello.write(config.parent / "hello")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KHOOK_CONFIG_DIR": str(config),
        "KHOOK_STATE": "memory",
        "KAGENT_API_URL": agent.base_url,
        "KHOOK_LOG_LEVEL": "WARNING",
    }
    env.pop("KHOOK_DISPATCH", None)
    env.pop("VIRTUAL_ENV", None)
    keys = ("totals", "modules", "firsts", "imports", "floors", "hellos")
    runs: dict[str, dict[str, list[float]]] = {venv: {k: [] for k in keys} for venv in pythons}
    dispatched = dict.fromkeys(pythons, 0)
    for i in range(COLD_RUNS):
        for venv, python in pythons.items():
            event = FakeKubeApi().create(namespace="shop", object_name=f"cold-{venv}-{i}")
            runs_before = len(agent.runs)
            spawned = time.time()
            argv = [python, "-c", PROBE, str(MAIN), json.dumps(push_body(event))]
            done = subprocess.run(
                argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False
            )
            if done.returncode != 0:
                print(done.stderr[-2000:])
                not_measured(
                    COLD_KEYS,
                    f"the function's process ({venv} venv) failed: "
                    + (done.stderr.strip().splitlines() or ["no output"])[-1],
                )
                return False
            result = json.loads(done.stdout.splitlines()[-1])
            if result["status"] != 200:
                print(f"  first event answered {result['status']} ({venv} venv)")
                not_measured(COLD_KEYS, f"the first event was answered {result['status']}")
                return False
            dispatched[venv] += len(agent.runs) - runs_before
            mine = runs[venv]
            mine["totals"].append((result["done"] - spawned) * 1000)
            mine["imports"].append((result["framework"] + result["module"]) * 1000)
            floor = subprocess.run(
                [python, "-c", FLOOR],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=120,
                check=True,
            )
            mine["floors"].append(float(floor.stdout.split()[-1]) * 1000)
            mine["modules"].append(result["module"] * 1000)
            spawned = time.time()
            plain = subprocess.run(
                [python, "-c", PROBE, str(hello), json.dumps(push_body(event))],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=120,
                check=True,
            )
            answer = json.loads(plain.stdout.splitlines()[-1])
            if answer["status"] != 200:
                raise RuntimeError(f"the hello-world function answered {answer['status']}")
            mine["hellos"].append((answer["done"] - spawned) * 1000)
            mine["firsts"].append(result["first_event"] * 1000)
    ok = True
    for venv, python in pythons.items():
        ok &= cold_figures(venv, venv == "deployed", runs[venv], dispatched[venv], python, env)
    return ok


def cold_figures(
    venv: str,
    budgeted: bool,
    runs: dict[str, list[float]],
    dispatched: int,
    python: str,
    env: dict[str, str],
) -> bool:
    """One venv's cold-start figures; budgets (and ``covers``) only when ``budgeted``."""
    label = "" if budgeted else f" [{venv} venv]"
    cold = statistics.median(runs["totals"][1:])  # the first run also warms the bytecode cache
    print(
        f"  {venv} venv cold start: median of {COLD_RUNS - 1} runs (first discarded), "
        f"{dispatched} dispatches reached the agent; first event alone "
        f"{statistics.median(runs['firsts']):.0f} ms"
    )
    name = (
        f"functions/kubernetes cold start (spawn → first event answered, median of "
        f"{COLD_RUNS - 1}){label}"
    )
    floor = statistics.median(runs["floors"][1:])
    ratio = statistics.median(runs["imports"][1:]) / floor
    ratio_name = (
        f"functions/kubernetes import (functions_framework + main.py) / floor (median "
        f"of {COLD_RUNS - 1} each){label}"
    )
    if budgeted:
        figure(
            name,
            cold,
            "ms",
            f"<= {COLD_BUDGET_MS:.0f}",
            cold <= COLD_BUDGET_MS and dispatched == COLD_RUNS,
            covers="cold-start:kubernetes",
        )
    else:
        figure(name, cold, "ms", "n/a", None if dispatched == COLD_RUNS else False)
    hello = statistics.median(runs["hellos"][1:])
    figure(
        f"floor: hello-world function cold start (spawn → first event answered, median of "
        f"{COLD_RUNS - 1}){label}",
        hello,
        "ms",
        "-",
        None,
    )
    figure(
        f"functions/kubernetes cold start / hello-world function's (median of {COLD_RUNS - 1} "
        f"each){label}",
        cold / hello,
        "x",
        "n/a",
        None,
    )
    figure(
        f"floor: import functions_framework, pydantic (median of {COLD_RUNS - 1}){label}",
        floor,
        "ms",
        "-",
        None,
    )
    if budgeted:
        figure(
            ratio_name,
            ratio,
            "x",
            f"<= {IMPORT_RATIO_BUDGET:.2f}",
            ratio <= IMPORT_RATIO_BUDGET,
            covers="module-import:kubernetes",
        )
    else:
        figure(ratio_name, ratio, "x", "n/a", None)
    figure(
        f"functions/kubernetes main.py import over functions_framework (median of "
        f"{COLD_RUNS - 1}){label}",
        statistics.median(runs["modules"][1:]),
        "ms",
        "n/a",
        None,
    )
    trace = subprocess.run(
        [
            python,
            "-X",
            "importtime",
            "-c",
            PROBE,
            str(MAIN),
            json.dumps(push_body(FakeKubeApi().create(namespace="shop", object_name="trace"))),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    heavy = sorted({m.group(1) for m in map(HEAVY.search, trace.stderr.splitlines()) if m})
    print(
        f"  -X importtime: {len(trace.stderr.splitlines())} modules imported; heavy: "
        f"{', '.join(heavy) or 'none'}"
    )
    figure(
        f"heavy clients imported by functions/kubernetes (kubernetes, pubsub, grpc){label}",
        len(heavy),
        "modules",
        "0",
        trace.returncode == 0 and not heavy,
    )
    served = dispatched == COLD_RUNS and trace.returncode == 0 and not heavy
    if budgeted:
        return served and cold <= COLD_BUDGET_MS and ratio <= IMPORT_RATIO_BUDGET
    return served


def end_to_end(tmp: Path, config: Path, agent: TestAgent) -> bool:
    launcher, reason = find_launcher()
    if launcher is None:
        print(f"  end-to-end skipped: {reason}")
        not_measured(E2E_KEYS, f"no Pub/Sub emulator: {reason}")
        return os.environ.get("CI") != "true"
    arrivals: dict[int, float] = {}

    class Arrivals(list[Any]):
        """The agent's request log, stamping when each prompt arrived."""

        def append(self, request: Any) -> None:
            # The pod name is a quoted literal in the prompt, itself a JSON string here.
            match = re.search(rb'Pod \\"e2e-(\d+)\\" restarted', request.body)
            if match:
                arrivals.setdefault(int(match.group(1)), time.perf_counter())
            super().append(request)

    agent.requests = Arrivals()
    emulator = PubSubEmulator(launcher).start()
    api = FakeKubeApi(watch_max_seconds=600).start()
    function = FunctionServer(
        "kubernetes",
        tmp / "function.log",
        {
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_STATE": f"sqlite:{tmp / 'state.db'}",
            "KAGENT_API_URL": agent.base_url,
            "KHOOK_LOG_LEVEL": "WARNING",
        },
    )
    forwarder: ForwarderProcess | None = None
    try:
        function.start()
        topic = emulator.create_topic()
        emulator.create_subscription(
            topic, push_endpoint=f"{function.url}/{emulator.topic_path(topic)}"
        )
        forwarder = ForwarderProcess(
            tmp / "forwarder.log",
            {
                "KHOOK_FORWARDER_KUBE_API_URL": api.url,
                "PUBSUB_EMULATOR_HOST": emulator.host,
                "KHOOK_TOPIC": topic,
                "GOOGLE_CLOUD_PROJECT": emulator.project,
                "KHOOK_CONFIG_DIR": str(config),
                "KHOOK_FORWARDER_LOG_LEVEL": "WARNING",
            },
        )
        end = time.monotonic() + 60
        while not forwarder.ready() and time.monotonic() < end:
            time.sleep(0.05)
        created: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(WARM_UP + E2E_EVENTS):
            due = start + i / RATE
            time.sleep(max(0.0, due - time.perf_counter()))
            created[i] = time.perf_counter()
            api.create("BackOff", namespace="shop", object_name=f"e2e-{i}")
        end = time.monotonic() + 30
        while len(arrivals) < len(created) and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        if forwarder is not None:
            forwarder.stop()
        function.stop()
        api.stop()
        emulator.stop()
    latencies = [
        (arrivals[i] - created[i]) * 1000 for i in created if i >= WARM_UP and i in arrivals
    ]
    missing = E2E_EVENTS - len(latencies)
    if not latencies:
        print("  no event reached the agent; function log tail:\n" + function.logs()[-2000:])
        not_measured(E2E_KEYS, f"none of {E2E_EVENTS} events reached the agent")
        return False
    p50 = statistics.median(latencies)
    p99 = sorted(latencies)[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(
        f"  end to end: {len(latencies)} of {E2E_EVENTS} events at {RATE}/s reached the agent "
        f"({missing} missing); max {max(latencies):.0f} ms"
    )
    figure(
        f"local end to end p50 at {RATE} events/s (watch → … → A2A agent)",
        p50,
        "ms",
        f"<= {P50_BUDGET_MS:.0f}",
        p50 <= P50_BUDGET_MS and missing == 0,
        covers="e2e:p50",
    )
    figure(
        f"local end to end p99 at {RATE} events/s",
        p99,
        "ms",
        f"<= {P99_BUDGET_MS:.0f}",
        p99 <= P99_BUDGET_MS and missing == 0,
        covers="e2e:p99",
    )
    return True


def main() -> int:
    agent = TestAgent()
    server = start_agent(agent)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            config = config_dir(tmp)
            warm_bytecode()
            try:
                pythons = {"deployed": str(deployed_python()), "development": sys.executable}
            except subprocess.CalledProcessError as exc:
                not_measured(COLD_KEYS, f"the deployed venv could not be built: {exc}")
                ok = False
            else:
                ok = cold_start(config, agent, pythons)
            ok = end_to_end(tmp, config, agent) and ok
    finally:
        server.stop()
    return 0 if ok else 1  # misses are reported above; only a broken run fails


if __name__ == "__main__":
    sys.exit(main())
