"""functions/kubernetes request rate against a hello-world functions-framework function.

Budgets: requests per second served by ``functions/kubernetes`` over those of a hello-world
CloudEvent function that only decodes the message (base64 + ``json.loads``), both served by
functions-framework (``python -m functions_framework``, gunicorn, as Cloud Run runs it) in the
same run: >= 0.90x with the memory state, >= 0.85x with the SQLite state.

Both are fed the same Pub/Sub push bodies by one client driving ``CONNECTIONS`` keep-alive
connections at full speed, ``REQUESTS`` a turn; the three servers (hello world, memory state,
SQLite state) take turns, in a rotated order each round, and each ratio is the median over
``ROUNDS`` rounds of the function's rate over the hello-world rate of the same round.

The workload is the storm mix on the wire, as in ``pipeline.py``: a turn's ``REQUESTS`` Warning
Events over ``PODS`` pods, a quarter with a reason no hook maps (FailedScheduling), the rest pod
restarts the Hook sends to an agent; only the first of each pod fires (claim, render, dispatch,
audit record: 7.5 % of the requests), the others stop at the claim as duplicates. Dispatch
is the dry-run dispatcher, so the figure is the function's own cost, not an agent's. Each round
uses new pod names, so nothing is a duplicate of an earlier round. Every request must be
answered 200, or the run fails.

``KHOOK_BENCH_ROUNDS`` (default 5) and ``KHOOK_BENCH_REQUESTS`` (default 2,000) shrink the run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
import _hello  # noqa: E402
from _report import figure, not_measured, table  # noqa: E402

from tests.support.configdir import restart_hook  # noqa: E402
from tests.support.functions import FunctionServer  # noqa: E402
from tests.support.kube_api import FakeKubeApi  # noqa: E402

ROUNDS = max(1, int(os.environ.get("KHOOK_BENCH_ROUNDS", "5")))
REQUESTS = max(4 * 4, int(os.environ.get("KHOOK_BENCH_REQUESTS", "2000")))
CONNECTIONS = 4
PODS = max(2, REQUESTS * 3 // 40)  # 150 at the default size: 7.5 % of the requests fire
MEMORY_BUDGET, SQLITE_BUDGET = 0.90, 0.85
KEYS = ("function-rate:memory", "function-rate:sqlite")


def config_dir(tmp: Path) -> Path:
    config = tmp / "config"
    (config / "hooks").mkdir(parents=True)
    for name in ("event-mappings.yaml", "plugins.yaml"):
        (config / name).write_text((ROOT / "config" / name).read_text())
    (config / "hooks" / "shop.yaml").write_text(restart_hook())
    return config


def bodies(prefix: str) -> list[bytes]:
    """A round's push bodies: the storm mix, with pod names no other round uses."""
    api = FakeKubeApi()
    out = []
    for i in range(REQUESTS):
        pod = f"{prefix}-{i % PODS}"
        if i % 4 == 3:
            event = api.create("FailedScheduling", "0/3 nodes are available", object_name=pod)
        else:
            event = api.create(object_name=pod)
        message = {
            "data": base64.b64encode(json.dumps(event).encode()).decode(),
            "messageId": f"{prefix}-{i}",
            "attributes": {"khook.source": "kubernetes"},
        }
        out.append(
            json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()
        )
    return out


def drive(port: int, payloads: list[bytes]) -> tuple[float, int]:
    """Send every one of ``payloads`` once, as fast as answers come, over ``CONNECTIONS``
    keep-alive connections (body ``i`` on connection ``i % CONNECTIONS``).

    Returns requests answered per second, and how many were answered other than 200.
    """
    failed = [0] * CONNECTIONS
    headers = {"Content-Type": "application/json"}

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for body in payloads[slot::CONNECTIONS]:
                for attempt in range(2):
                    try:
                        conn.request("POST", "/", body, headers)
                        response = conn.getresponse()
                        response.read()
                        break
                    except (http.client.HTTPException, ConnectionError):
                        conn.close()  # the server closed an idle keep-alive: reconnect once
                        if attempt:
                            raise
                failed[slot] += response.status != 200
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(CONNECTIONS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(payloads) / (time.perf_counter() - start), sum(failed)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = config_dir(tmp)
        hello = _hello.write(tmp / "hello")
        common = {
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_DISPATCH": "dry-run",
            "KHOOK_LOG_LEVEL": "WARNING",
            "KAGENT_API_URL": "http://127.0.0.1:9",
        }
        servers = {
            "hello": FunctionServer("hello", tmp / "hello.log", source=hello),
            "memory": FunctionServer(
                "kubernetes", tmp / "memory.log", {**common, "KHOOK_STATE": "memory"}
            ),
            "sqlite": FunctionServer(
                "kubernetes",
                tmp / "sqlite.log",
                {**common, "KHOOK_STATE": f"sqlite:{tmp / 'state.db'}"},
            ),
        }
        rates: dict[str, list[float]] = {name: [] for name in servers}
        try:
            for server in servers.values():
                server.start()
            names = list(servers)
            for name in names:  # warm up: first requests import lazily and fill caches
                drive(servers[name].port, bodies(f"warm-{name}")[:200])
            for r in range(ROUNDS):
                order = names[r % 3 :] + names[: r % 3]
                for name in order:
                    rate, failed = drive(servers[name].port, bodies(f"r{r}-{name}"))
                    if failed:
                        print(servers[name].logs()[-2000:])
                        not_measured(KEYS, f"{name}: {failed} requests not answered 200")
                        return 1
                    rates[name].append(rate)
        except RuntimeError as exc:
            not_measured(KEYS, f"a function server did not start: {exc}")
            return 1
        finally:
            for server in servers.values():
                server.stop()
    hello = rates["hello"]
    ratios = {
        name: [rate / h for rate, h in zip(rates[name], hello, strict=True)]
        for name in ("memory", "sqlite")
    }
    print(
        f"  {ROUNDS} rounds of {REQUESTS:,} requests, {CONNECTIONS} connections; "
        f"ratios memory {', '.join(f'{x:.2f}' for x in ratios['memory'])}; "
        f"sqlite {', '.join(f'{x:.2f}' for x in ratios['sqlite'])}"
    )
    figure(
        f"floor: hello-world function requests/s (median of {ROUNDS})",
        statistics.median(hello),
        "req/s",
        "-",
        None,
    )
    for name, budget in (("memory", MEMORY_BUDGET), ("sqlite", SQLITE_BUDGET)):
        ratio = statistics.median(ratios[name])
        figure(
            f"functions/kubernetes requests/s, {name} state (median of {ROUNDS})",
            statistics.median(rates[name]),
            "req/s",
            "-",
            None,
        )
        figure(
            f"functions/kubernetes / hello world requests/s, {name} state (median of "
            f"{ROUNDS} rounds)",
            ratio,
            "x",
            f">= {budget:.2f}",
            ratio >= budget,
            covers=f"function-rate:{name}",
        )
    table(
        "functions/kubernetes request rate per round",
        [
            "round",
            "hello req/s",
            "memory req/s",
            "sqlite req/s",
            "memory / hello",
            "sqlite / hello",
        ],
        [
            [
                str(r + 1),
                f"{hello[r]:,.0f}",
                f"{rates['memory'][r]:,.0f}",
                f"{rates['sqlite'][r]:,.0f}",
                f"{ratios['memory'][r]:.2f}",
                f"{ratios['sqlite'][r]:.2f}",
            ]
            for r in range(ROUNDS)
        ],
        note="storm mix over Pub/Sub push bodies, dry-run dispatch, same run, rotated turns",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
