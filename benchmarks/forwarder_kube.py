"""Forwarder figures against a real kube-apiserver and etcd: list rate, storm lag, RSS.

Budgets: a first list of 20,000 Events forwarded at >= 2,000 events/s; behind a live storm
the last Event published <= 5 s after the last one was created; RSS (idle, through the list,
through the storm) within the Deployment's memory request, 128 MiB.

The API server comes from the kube test assets (``KHOOK_KUBE_ASSETS``, else ``../shared/kube``;
tests/support/kube_real.py); the forwarder is its own process (``python -m
khook_core.forwarder``), so its RSS is its own. A live storm is as fast as the API server
accepts Events from this machine, so its figure is the lag behind the storm, not a rate the
forwarder chooses. Without the assets or the Pub/Sub emulator the budgets are recorded as not
measured. Each figure is from one run, not a median.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _report import figure, not_measured  # noqa: E402
from forwarder import vm_hwm_mib, wait  # noqa: E402

from tests.support.forwarder import ForwarderProcess  # noqa: E402
from tests.support.kube_real import (  # noqa: E402
    SKIP_REASON,
    RealKube,
    create_events,
    kube_assets,
    new_namespace,
    running_kube,
)
from tests.support.pubsub import PubSubEmulator, find_launcher  # noqa: E402

LISTED = 20_000
STORM = 5_000
LIST_RATE_BUDGET = 2_000.0  # events/s
LAG_BUDGET_S = 5.0
RSS_BUDGET_MIB = 128.0
DEADLINE_S = 300.0
KEYS = ("forwarder-real:list-rate", "forwarder-real:storm-lag", "forwarder-real:rss")


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_figure(name: str, value: float | None) -> None:
    if value is None:
        not_measured("forwarder-real:rss", f"{name}: no /proc/<pid>/status on this system")
        return
    figure(
        name,
        value,
        "MiB",
        f"<= {RSS_BUDGET_MIB:.0f}",
        value <= RSS_BUDGET_MIB,
        covers="forwarder-real:rss",
    )


def start(kube: RealKube, emulator: PubSubEmulator, topic: str, log: Path) -> ForwarderProcess:
    return ForwarderProcess(
        log,
        {
            "KUBECONFIG": str(kube.kubeconfig),
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "KHOOK_TOPIC": topic,
            "GOOGLE_CLOUD_PROJECT": emulator.project,
            "KHOOK_CONFIG_DIR": str(ROOT / "config"),
            "KHOOK_FORWARDER_LOG_LEVEL": "WARNING",
        },
    )


def measure(kube: RealKube, emulator: PubSubEmulator, tmp: Path) -> int:
    topic = emulator.create_topic()
    subscription = emulator.create_subscription(topic)
    with contextlib.ExitStack() as stack:
        idle = start(kube, emulator, topic, tmp / "idle.log")
        stack.callback(idle.stop)
        if not wait(idle.ready, 60):
            not_measured(KEYS, "the forwarder did not become ready within 60 s")
            return 1
        time.sleep(2)  # settle: imports done, the first watch open
        rss_figure(
            "forwarder RSS idle on a real API server (one cluster-wide watch)",
            vm_rss_mib(idle.proc.pid),
        )
        idle.stop()

        namespace = new_namespace(kube, "bench")
        began = time.perf_counter()
        create_events(kube, namespace, range(LISTED), workers=8)
        print(f"  created {LISTED:,} Events in {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        lister = start(kube, emulator, topic, tmp / "list.log")
        stack.callback(lister.stop)
        listed = wait(lambda: lister.metric("messages_published_total") >= LISTED, DEADLINE_S)
        elapsed = time.perf_counter() - began
        figure(
            f"forwarder first list of {LISTED:,} Events (start to all published)",
            LISTED / elapsed,
            "events/s",
            f">= {LIST_RATE_BUDGET:,.0f}",
            listed and LISTED / elapsed >= LIST_RATE_BUDGET,
            covers="forwarder-real:list-rate",
        )
        rss_figure(
            f"forwarder peak RSS through a first list of {LISTED:,} Events",
            vm_hwm_mib(lister.proc.pid),
        )

        before = lister.metric("messages_published_total")
        began = time.perf_counter()
        create_events(kube, namespace, range(LISTED, LISTED + STORM), workers=8)
        created = time.perf_counter()
        stormed = wait(
            lambda: lister.metric("messages_published_total") - before >= STORM, DEADLINE_S
        )
        done = time.perf_counter()
        print(
            f"  live storm: {STORM:,} Events created in {created - began:.1f} s "
            f"({STORM / (created - began):,.0f}/s), all published {done - created:.2f} s later"
        )
        figure(
            f"forwarder behind a live storm of {STORM:,} Events: lag after the last",
            done - created,
            "s",
            f"<= {LAG_BUDGET_S:.0f}",
            stormed and done - created <= LAG_BUDGET_S,
            covers="forwarder-real:storm-lag",
        )
        figure(
            "forwarder rate through the live storm (bounded by the API server)",
            STORM / (done - began),
            "events/s",
            "n/a",
            stormed,
        )
        rss_figure(
            "forwarder peak RSS after the list and the live storm", vm_hwm_mib(lister.proc.pid)
        )
        pulled = len(emulator.pull_until(subscription, LISTED + STORM, timeout=120))
        print(f"  pulled {pulled:,} of {LISTED + STORM:,}")
    return 0


def main() -> int:
    launcher, reason = find_launcher()
    if launcher is None:
        not_measured(KEYS, f"no Pub/Sub emulator: {reason}")
        return 1 if os.environ.get("CI") == "true" else 0
    if kube_assets() is None:
        print(f"  skipped: {SKIP_REASON}")
        not_measured(KEYS, "no kube-apiserver assets (KHOOK_KUBE_ASSETS)")
        return 0
    emulator = PubSubEmulator(launcher).start()
    try:
        with running_kube() as kube, tempfile.TemporaryDirectory() as tmp:
            return measure(kube, emulator, Path(tmp))
    finally:
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
