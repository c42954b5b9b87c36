"""Cold start of the alertmanager, webhook, kafka, cdc and sweep functions, and what they import.

Each run is a fresh ``python`` process that imports functions-framework, loads
``functions/<name>/main.py`` with ``create_app`` and answers its first event through the test
client, with memory state and a local A2A agent (design.md's conditions): the first event of
the four source functions is dispatched for real, so the run pays for the HTTP client (httpx
import, client creation) and the round trip to the agent. The agent is the a2a-sdk test agent
(tests/support/a2a_agent.py) served in this process, as in kubernetes_function.py. The wall
time runs from spawning the process to the answer.

The ``sweep`` function's event is a Cloud Scheduler tick whose content is ignored; on a fresh
memory store nothing is held back, so its first tick dispatches nothing: its figure is "spawn →
first tick answered".

Budgets: median <= 250 ms over ``KHOOK_BENCH_RUNS`` (default 15) runs; importing the function
(functions_framework, then ``main.py``) costs <= 1.20x the floor, a process that only runs
``import functions_framework, pydantic``, timed in the same run (round-robin with the functions,
median of each). ``python -X importtime`` must show none of kubernetes, google.cloud.pubsub, grpc
or a2a. In the same turns, unbudgeted: the floor plus one pydantic model class and PyYAML, what
validating a configuration parsed from YAML at start costs at least (``import pydantic`` alone is
lazy); the config directory is laid out as the archive carries it, each YAML file with its
pre-parsed form (``scripts/package.py``), so the functions themselves do not import PyYAML.
Also in the same turns, unbudgeted: the hello-world function (benchmarks/_hello.py) from spawn
to its first event answered, through the same child: the machine's own floor under the 250 ms.

Every process runs twice per turn: from the deployed venv (benchmarks/_deployed.py: a plain
install of the archive's requirements.txt, what Cloud Functions runs) and from the development
venv. The budgets are checked on the deployed venv's figures; the development venv's (editable
install's path finder, development-only packages that httpcore and others import when present)
are printed beside them, labelled and unbudgeted.
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
from pathlib import Path
from typing import NamedTuple

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))
import _hello  # noqa: E402
from _deployed import archived_config, deployed_python, warm_bytecode  # noqa: E402
from _report import figure, not_measured  # noqa: E402

from tests.support.a2a_agent import TestAgent, start_agent  # noqa: E402

RUNS = int(os.environ.get("KHOOK_BENCH_RUNS", "15"))
BUDGET_MS = 250.0
IMPORT_RATIO_BUDGET = 1.20
FORBIDDEN = ("kubernetes", "google.cloud.pubsub", "grpc", "a2a")
FUNCTIONS = ("alertmanager", "webhook", "kafka", "cdc", "sweep")
TOKEN = "bench-token"  # noqa: S105 - a made-up token for a local, in-process request
AGENT = "{name: k8s-agent, namespace: kagent}"  # the path tests/support/a2a_agent.py serves
HOOKS = f"""\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: bench, namespace: bench}}
spec:
  sources: [alertmanager, webhook, kafka, cdc]
  eventConfigurations:
  - {{eventType: kube-pod-crash-looping, agentRef: {AGENT}, prompt: "Pod {{{{.ResourceName}}}}"}}
  - {{eventType: deployment-failed, agentRef: {AGENT}, prompt: "Deploy {{{{.ResourceName}}}}"}}
  - {{eventType: consumer-lag, agentRef: {AGENT}, prompt: "Lag {{{{.ResourceName}}}}"}}
  - {{eventType: row-state-changed, agentRef: {AGENT}, prompt: "Row {{{{.ResourceName}}}}"}}
"""

# The child: import, create the app, answer one request, report the clock at each step.
CHILD = r"""
import time
t_start = time.time()
import json, sys
import functions_framework
t_framework = time.time()
source, path, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[4])
body = sys.argv[3].encode()
app = functions_framework.create_app("handle", source)
t_module = time.time()
reply = app.test_client().post(path, data=body, content_type="application/json", headers=headers)
t_done = time.time()
print(json.dumps({"start": t_start, "framework": t_framework, "module": t_module, "done": t_done,
                  "status": reply.status_code}))
"""
BASELINE = r"""
import time, json
t_start = time.time()
import functions_framework, pydantic
print(json.dumps({"start": t_start, "done": time.time()}))
"""
# What no function goes below while its configuration is YAML validated by pydantic at start:
# the floor, one model class (``import pydantic`` is lazy; the first ``BaseModel`` loads
# pydantic.main, its schema builder and pydantic.types) and PyYAML. Unbudgeted, beside the
# floor, so the report says how much of each function's ratio is that.
MODEL_BASELINE = r"""
import time, json
t_start = time.time()
import functions_framework, pydantic
class One(pydantic.BaseModel):
    name: str = ""
import yaml
print(json.dumps({"start": t_start, "done": time.time()}))
"""


class FirstRequest(NamedTuple):
    """What a function's first request is, and how many agent runs it should start."""

    path: str
    body: str
    headers: dict[str, str]
    dispatches: int
    label: str  # what "first ... answered" means in the figure's name


def config_dir(root: Path) -> Path:
    """The project's mappings plus the draft rows of these sources, and one hook each."""
    base = yaml.safe_load((REPO / "config" / "event-mappings.yaml").read_text())["mappings"]
    draft_file = REPO / "config" / "event-mappings.d" / "sources.yaml"
    draft = yaml.safe_load(draft_file.read_text())["mappings"] if draft_file.exists() else []
    keys = {(m["eventSource"], m["eventType"]) for m in draft}
    rows = [m for m in base if (m["eventSource"], m["eventType"]) not in keys] + draft
    config = root / "config"
    (config / "hooks").mkdir(parents=True)
    (config / "event-mappings.yaml").write_text(yaml.safe_dump({"mappings": rows}))
    (config / "plugins.yaml").write_text("plugins: []\n")
    (config / "hooks" / "bench.yaml").write_text(HOOKS)
    return archived_config(config)


def push(data: str, attributes: dict[str, str]) -> str:
    """A Pub/Sub push envelope, as the subscription posts it to the function."""
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(data.encode()).decode(),
                "messageId": "1",
                "attributes": attributes,
            },
            "subscription": "projects/p/subscriptions/s",
        }
    )


def first_requests() -> dict[str, FirstRequest]:
    samples = REPO / "config" / "samples"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    kafka = {"kafka.topic": "ops", "kafka.partition": "0", "kafka.offset": "1"}
    event = "first event answered"
    return {
        "alertmanager": FirstRequest(
            "/",
            (samples / "alertmanager" / "disk-full.json")
            .read_text()
            .replace("DiskFull", "KubePodCrashLooping"),
            bearer,
            1,
            event,
        ),
        "webhook": FirstRequest(
            "/",
            (samples / "webhook" / "generic-deployment-failed.json").read_text(),
            bearer,
            1,
            event,
        ),
        "kafka": FirstRequest(
            "/projects/p/topics/t",
            push((samples / "kafka" / "consumer-lag.json").read_text(), kafka),
            {},
            1,
            event,
        ),
        "cdc": FirstRequest(
            "/projects/p/topics/t",
            push((samples / "cdc" / "debezium-update-with-schema.json").read_text(), kafka),
            {},
            1,
            event,
        ),
        "sweep": FirstRequest(
            "/projects/p/topics/khook-sweep",
            push('{"tick": "sweep"}', {}),
            {},
            0,
            "first tick answered, nothing held so nothing dispatched",
        ),
    }


def spawn(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a child; its figures plus ``spawned``, the parent's clock just before the spawn."""
    spawned = time.time()
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed:\n{result.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["spawned"] = spawned
    return figures


def imported_modules(argv: list[str], env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.append(line.rsplit("|", 1)[1].strip())
    return names


def measure(agent: TestAgent, config: Path, pythons: dict[str, str]) -> bool:
    """Every function's figures in each venv; False if a deployed figure missed its budget or
    a function did not answer as it should (the development venv's figures are unbudgeted)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KHOOK_CONFIG_DIR": str(config),
        "KHOOK_STATE": "memory",
        "KAGENT_API_URL": agent.base_url,
        "KHOOK_LOG_LEVEL": "WARNING",
        "KHOOK_ALERTMANAGER_TOKEN": TOKEN,
        "KHOOK_WEBHOOK_TOKEN": TOKEN,
    }
    env.pop("KHOOK_DISPATCH", None)  # dispatch for real, to the local agent
    env.pop("VIRTUAL_ENV", None)
    requests = first_requests()
    hello = _hello.write(config.parent / "hello")
    argvs: dict[tuple[str, str], list[str]] = {}
    for venv, python in pythons.items():
        argvs[venv, "baseline"] = [python, "-c", BASELINE]
        argvs[venv, "models"] = [python, "-c", MODEL_BASELINE]
        for name, r in requests.items():
            source = f"functions/{name}/main.py"
            argvs[venv, name] = [python, "-c", CHILD, source, r.path, r.body, json.dumps(r.headers)]
        argvs[venv, "hello"] = [python, "-c", CHILD, str(hello), "/", push("{}", {}), "{}"]
    for venv in pythons:
        spawn(argvs[venv, "baseline"], env)  # warm the OS page cache
    for (venv, name), argv in argvs.items():
        if name not in requests:
            continue
        before = len(agent.runs)
        warm = spawn(argv, env)
        started = len(agent.runs) - before
        if warm["status"] != 200 or started != requests[name].dispatches:
            raise RuntimeError(
                f"{venv} {name}: first request answered {warm['status']} with "
                f"{started} agent runs (expected 200 and "
                f"{requests[name].dispatches})"
            )
    # Round-robin over both venvs, so a burst of load from elsewhere on the machine hits every
    # function in each.
    runs: dict[tuple[str, str], list[dict[str, float]]] = {key: [] for key in argvs}
    sent = dict.fromkeys(argvs, 0)
    for _ in range(RUNS):
        for key, argv in argvs.items():
            before = len(agent.runs)
            runs[key].append(spawn(argv, env))
            sent[key] += len(agent.runs) - before
    print(
        f"cold start, {RUNS} fresh processes each (median), in turns in the deployed venv "
        f"(budgeted) and the development venv (unbudgeted), local A2A agent at "
        f"{agent.base_url}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    ok = True
    for venv in pythons:
        ok &= report(venv, venv == "deployed", runs, sent, argvs, env, requests)
    return ok


def report(
    venv: str,
    budgeted: bool,
    runs: dict[tuple[str, str], list[dict[str, float]]],
    sent: dict[tuple[str, str], int],
    argvs: dict[tuple[str, str], list[str]],
    env: dict[str, str],
    requests: dict[str, FirstRequest],
) -> bool:
    """One venv's figures; budgets (and the report's ``covers``) only when ``budgeted``."""
    base = runs[venv, "baseline"]
    baseline = statistics.median((r["done"] - r["spawned"]) * 1000 for r in base)
    floor = statistics.median((r["done"] - r["start"]) * 1000 for r in base)
    label = "" if budgeted else f" [{venv} venv]"
    print(
        f"  {venv} venv: `import functions_framework, pydantic` alone: {floor:.0f} ms of "
        f"import, {baseline:.0f} ms from spawn"
    )
    if any(r["status"] != 200 for r in runs[venv, "hello"]):
        raise RuntimeError(f"{venv}: the hello-world function did not answer 200")
    hello = statistics.median((r["done"] - r["spawned"]) * 1000 for r in runs[venv, "hello"])
    figure(
        f"floor: hello-world function cold start, spawn → first event answered (median of "
        f"{RUNS}){label}",
        hello,
        "ms",
        "-",
        None,
    )
    figure(
        f"floor: import functions_framework, pydantic (median of {RUNS}){label}",
        floor,
        "ms",
        "-",
        None,
    )
    models = statistics.median((r["done"] - r["start"]) * 1000 for r in runs[venv, "models"])
    figure(
        f"floor + one pydantic model class + import yaml / floor (median of {RUNS} each){label}",
        models / floor,
        "x",
        "n/a",
        None,
    )
    ok = True
    for name, request in requests.items():
        mine = runs[venv, name]
        total = statistics.median((r["done"] - r["spawned"]) * 1000 for r in mine)
        module = statistics.median((r["module"] - r["framework"]) * 1000 for r in mine)
        imported = statistics.median((r["module"] - r["start"]) * 1000 for r in mine)
        ratio = imported / floor
        first = statistics.median((r["done"] - r["module"]) * 1000 for r in mine)
        answered = all(r["status"] == 200 for r in mine)
        expected = request.dispatches * RUNS
        served = answered and sent[venv, name] == expected
        if budgeted:
            figure(
                f"{name}: cold start, spawn → {request.label} (median of {RUNS})",
                total,
                "ms",
                f"<= {BUDGET_MS:.0f} ms",
                total <= BUDGET_MS and served,
                covers=f"cold-start:{name}",
            )
            figure(
                f"{name}: import (functions_framework + main.py) / floor (median of {RUNS} each)",
                ratio,
                "x",
                f"<= {IMPORT_RATIO_BUDGET:.2f}",
                ratio <= IMPORT_RATIO_BUDGET,
                covers=f"module-import:{name}",
            )
        else:
            figure(
                f"{name}: cold start, spawn → {request.label} (median of {RUNS}){label}",
                total,
                "ms",
                "n/a",
                None if served else False,
            )
            figure(
                f"{name}: import (functions_framework + main.py) / floor (median of {RUNS} "
                f"each){label}",
                ratio,
                "x",
                "n/a",
                None,
            )
        figure(
            f"{name}: main.py import over functions_framework (median of {RUNS}){label}",
            module,
            "ms",
            "n/a",
            None,
        )
        print(
            f"    (first request {first:.0f} ms; {total - baseline:.0f} ms in all over the "
            f"floor's process; {sent[venv, name]} of {expected} expected agent runs)"
        )
        heavy = sorted(
            {
                m
                for m in imported_modules(argvs[venv, name], env)
                if m.split(".")[0] in ("kubernetes", "grpc", "a2a")
                or m.startswith("google.cloud.pubsub")
            }
        )
        figure(
            f"{name}: heavy modules imported ({', '.join(FORBIDDEN)}){label}",
            len(heavy),
            "modules",
            "0",
            not heavy,
        )
        if heavy:
            print(f"    imported: {', '.join(heavy[:10])}")
        ok &= not heavy and served
        if budgeted:
            ok &= total <= BUDGET_MS and ratio <= IMPORT_RATIO_BUDGET
    return ok


def main() -> int:
    warm_bytecode()
    agent = TestAgent()
    server = start_agent(agent)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pythons = {"deployed": str(deployed_python()), "development": sys.executable}
            return 0 if measure(agent, config_dir(Path(tmp)), pythons) else 1
    except Exception as exc:
        not_measured(
            [f"{kind}:{name}" for name in FUNCTIONS for kind in ("cold-start", "module-import")],
            f"sources_cold_start.py failed: {str(exc).splitlines()[0]}",
        )
        raise
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
