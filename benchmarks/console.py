"""Console figures: the API over 100,000 stored firings, and the dashboard's page load.

The issue's figures, with no budget in design.md's table yet (reported, not judged):

- p50/p99 of ``GET /api/v1/firings`` for the last 24 hours (first page of 50) and of
  ``GET /api/v1/counts`` for the same day, served by functions/console under
  functions-framework, over 100,000 firings spread over 48 hours (half of them in the range),
  on SQLite and on the Firestore emulator;
- the dashboard in headless Chromium over the SQLite data: first contentful paint, and the
  moment every panel is drawn from the API's answers (the first meaningful paint), median of
  several loads.
- on the Firestore emulator, in the same run: ``counts`` as a store without counters must
  count (streaming every record of the day), Firestore's ``count()`` aggregation (one query
  per bucket and group: a sample timed, the day estimated), and one audit record's write
  alone and with its per-minute counter in the same batch (``FirestoreStateStore.record``).

Without the Firestore emulator or Chromium those figures are recorded as not measured.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
import httpx  # noqa: E402
from _report import figure, not_measured, table  # noqa: E402

from khook_core.state import audit_fields  # noqa: E402
from khook_core.state.base import DedupKey, Firing  # noqa: E402

FIRINGS = 100_000
SPAN = timedelta(hours=48)
FIRINGS_CALLS = 200
COUNTS_CALLS = {"sqlite": 40, "firestore": 40}
STREAMED_CALLS = 3
"""Streaming the day's 50,000 records takes seconds a call."""
AGGREGATIONS = 10
"""count() queries timed (the emulator scans the collection for each)."""
WRITES = 300
"""Audit records written one by one to time the counter's cost on the write."""
PAGE_LOADS = 5
TOKEN = "bench-console-token"  # noqa: S105  (the benchmark's own console, on loopback)
HOOKS = [f"team-{i}/hook-{j}" for i in range(5) for j in range(4)]
SOURCES = ["kubernetes", "alertmanager", "webhook", "kafka"]
DECISIONS = ["dispatched"] * 6 + ["coalesced", "suppressed:budget", "failed:transient"]


def synthetic(i: int, now: datetime) -> Firing:
    """The ``i``-th of ``FIRINGS`` records, evenly over ``SPAN`` before ``now``."""
    return Firing(
        key=DedupKey(f"k{i}"),
        hook=HOOKS[i % len(HOOKS)],
        event_id=f"e{i}",
        event_type=["pod-restart", "oom-kill", "alert-firing"][i % 3],
        source=SOURCES[i % len(SOURCES)],
        resource=f"shop/Pod/web-{i % 500}",
        agent="kagent/k8s-agent",
        prompt_hash="h",
        outcome=DECISIONS[i % len(DECISIONS)],
        at=now - SPAN * (i / FIRINGS),
        task_id=f"task-{i}",
    )


def fill_sqlite(path: Path, now: datetime) -> None:
    import sqlite3

    from khook_core.state.sqlite import SqliteStateStore

    SqliteStateStore(path).close()  # the schema, as the store creates it
    columns = ", ".join(audit_fields.COLUMNS)
    marks = ", ".join("?" * len(audit_fields.COLUMNS))
    with sqlite3.connect(path) as db:  # one transaction: set-up, not what is measured
        db.executemany(
            f"INSERT INTO firings ({columns}) VALUES ({marks})",  # noqa: S608
            (audit_fields.to_row(synthetic(i, now)) for i in range(FIRINGS)),
        )


def fill_firestore(now: datetime) -> None:
    """The records and, as ``FirestoreStateStore.record`` writes them, their per-minute
    counters (a batch's increments of one counter added up: the same stored counts)."""
    from google.cloud import firestore

    from khook_core.state.firestore import COUNTING_SINCE, FIRING_COUNTS, FirestoreStateStore

    client = firestore.Client()
    store = FirestoreStateStore(client)
    oldest = synthetic(FIRINGS - 1, now).at
    client.collection(FIRING_COUNTS).document(COUNTING_SINCE).create(
        {"since": oldest.replace(second=0, microsecond=0)}
    )
    per_batch = 250  # a record and a counter write each: Firestore's 500 writes a batch
    for first in range(0, FIRINGS, per_batch):
        batch = client.batch()
        counters: dict[str, tuple[Any, dict[str, Any], Counter[str]]] = {}
        for i in range(first, min(first + per_batch, FIRINGS)):
            record = synthetic(i, now)
            batch.create(client.collection("firings").document(), audit_fields.to_document(record))
            ref, fields = store.counter_write(record)
            [(minute, group)] = [(m, g) for m, groups in fields["counts"].items() for g in groups]
            counters.setdefault(ref.id, (ref, fields, Counter()))[2][(minute, group)] += 1
        for ref, fields, added in counters.values():
            counts: dict[str, dict[str, Any]] = {}
            for (minute, group), n in added.items():
                counts.setdefault(minute, {})[group] = firestore.Increment(n)
            batch.set(ref, {**fields, "counts": counts}, merge=True)
        batch.commit()
    client.close()


def audit_write_cost() -> None:
    """One audit record on the emulator: the record alone (a ``create``, as before counters)
    and ``record`` (the record and its counter in one batch), alternated, p50 each."""
    from google.cloud import firestore

    from khook_core.state.firestore import FIRINGS as COLLECTION
    from khook_core.state.firestore import FirestoreStateStore

    store = FirestoreStateStore(firestore.Client())
    plain, counted = [], []
    now = datetime.now(UTC)
    for i in range(WRITES):
        record = synthetic(i, now)
        started = time.perf_counter()
        store._firings.document().create(audit_fields.to_document(record))
        plain.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        store.record(record)
        counted.append((time.perf_counter() - started) * 1000)
    store.close()
    alone, both = statistics.median(plain), statistics.median(counted)
    figure(
        f"audit write, {COLLECTION} record alone, Firestore emulator, p50", alone, "ms", "—", None
    )
    figure(
        "audit write, record + minute counter (one batch), Firestore emulator, p50",
        both,
        "ms",
        "—",
        None,
    )
    figure("audit write cost of the counter, over the record alone", both / alone, "x", "—", None)


def streamed_counts(now: datetime) -> None:
    """The same day counted the way a store without counters must: every record's fields
    streamed (what ``counts`` cost before the counters), in the same run for the ratio."""
    from collections import Counter as Tally

    from google.cloud import firestore

    from khook_core.state.base import FiringFilter
    from khook_core.state.firestore import FirestoreStateStore

    store = FirestoreStateStore(firestore.Client())
    where = FiringFilter(since=now - timedelta(hours=24))
    samples = []
    for _ in range(STREAMED_CALLS):
        started = time.perf_counter()
        store._count_streamed(where, timedelta(seconds=1800), Tally())
        samples.append((time.perf_counter() - started) * 1000)
    store.close()
    figure(
        "console counts by streaming every record (no counters), firestore, p50",
        statistics.median(samples),
        "ms",
        "—",
        None,
    )


def aggregation_counts(now: datetime) -> None:
    """The alternative to counters: Firestore's ``count()`` aggregation. It has no GROUP BY, so
    a day in 30-minute buckets takes one query per bucket and hook, source, type and outcome
    present: ``AGGREGATIONS`` of one bucket's queries timed, the day's estimated from them."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    client = firestore.Client()
    firings = client.collection("firings")
    start = now - timedelta(hours=24)
    end = start + timedelta(minutes=30)
    records = (synthetic(i, now) for i in range(FIRINGS))
    groups = sorted(
        {(r.hook, r.source, r.event_type, r.outcome) for r in records if start <= r.at < end}
    )
    samples = []
    for hook, source, kind, outcome in groups[:AGGREGATIONS]:
        query = (
            firings.where(filter=FieldFilter("hook", "==", hook))
            .where(filter=FieldFilter("source", "==", source))
            .where(filter=FieldFilter("event_type", "==", kind))
            .where(filter=FieldFilter("outcome", "==", outcome))
            .where(filter=FieldFilter("at", ">=", start))
            .where(filter=FieldFilter("at", "<", end))
        )
        started = time.perf_counter()
        aggregated: Any = query.count().get()
        samples.append((time.perf_counter() - started) * 1000)
        assert int(aggregated[0][0].value) > 0
    client.close()
    one = statistics.median(samples)
    figure("count() aggregation query, one bucket and group, firestore, p50", one, "ms", "—", None)
    figure(
        f"count() aggregation, 24 h in 30-minute buckets ({len(groups)} groups x 48, estimated)",
        one * len(groups) * 48,
        "ms",
        "—",
        None,
    )


_CLIENT = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
"""One kept-alive connection, as a dashboard's browser uses."""


def get(url: str) -> Any:
    response = _CLIENT.get(url)
    response.raise_for_status()
    return response.content


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def measure_api(backend: str, server_url: str, now: datetime) -> list[list[str]]:
    since = (now - timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    rows = []
    for path, calls in (
        (f"/api/v1/firings?since={since}&limit=50", FIRINGS_CALLS),
        (f"/api/v1/counts?since={since}&bucket=1800", COUNTS_CALLS[backend]),
    ):
        what = path.split("?")[0].removeprefix("/api/v1/")
        samples = []
        try:
            get(server_url + path)  # the store is opened by the first call
            for _ in range(calls):
                started = time.perf_counter()
                get(server_url + path)
                samples.append((time.perf_counter() - started) * 1000)
        except httpx.HTTPError as exc:
            not_measured((), f"console {what} on {backend}: {exc}")
            rows.append([backend, what, str(len(samples)), "failed", str(exc)[:60]])
            continue
        p50, p99 = percentiles(samples)
        figure(f"console {what}, 24 h of 100,000 firings, {backend}, p50", p50, "ms", "—", None)
        figure(f"console {what}, 24 h of 100,000 firings, {backend}, p99", p99, "ms", "—", None)
        rows.append([backend, what, str(calls), f"{p50:.1f}", f"{p99:.1f}"])
    return rows


PAINT = """
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return {fcp: paint ? paint.startTime : null, ready: window.khookReadyAt || null};
"""
MARK_READY = """
new MutationObserver(() => {
  if (document.body.dataset.state === 'ready' && !window.khookReadyAt) {
    requestAnimationFrame(() => { window.khookReadyAt = performance.now(); });
  }
}).observe(document.body, {attributes: true});
"""


def measure_page(server_url: str) -> None:
    import shutil

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        not_measured((), "no chromium or chromedriver: apt-get install chromium chromium-driver")
        print("  page load not measured: no chromium/chromedriver")
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1800",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    fcps, readies = [], []
    try:
        # The observer must exist before the page's script runs: install it on every document.
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument",
            {"source": f"addEventListener('DOMContentLoaded', () => {{{MARK_READY}}});"},
        )
        for _ in range(PAGE_LOADS):
            driver.get("about:blank")
            driver.get(f"{server_url}/#token={TOKEN}")
            WebDriverWait(driver, 120).until(lambda d: d.execute_script(PAINT)["ready"])
            timing = driver.execute_script(PAINT)
            fcps.append(timing["fcp"])
            readies.append(timing["ready"])
    finally:
        driver.quit()
    figure(
        "dashboard first contentful paint, headless Chromium, median",
        statistics.median(fcps),
        "ms",
        "—",
        None,
    )
    figure(
        "dashboard every panel drawn (first meaningful paint), 100,000 firings on SQLite, median",
        statistics.median(readies),
        "ms",
        "—",
        None,
    )


def main() -> int:
    from tests.support.configdir import make_config
    from tests.support.functions import FunctionServer

    now = datetime.now(UTC)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        config = make_config(tmp, "")
        env = {
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_CONSOLE_TOKEN": TOKEN,
            "KHOOK_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        fill_sqlite(tmp / "state.db", now)
        print(f"  wrote {FIRINGS:,} firings to SQLite in {time.perf_counter() - started:.1f} s")
        server = FunctionServer(
            "console",
            tmp / "console-sqlite.log",
            {**env, "KHOOK_STATE": f"sqlite:{tmp / 'state.db'}"},
            "http",
        )
        server.start()
        try:
            rows += measure_api("sqlite", server.url, now)
            measure_page(server.url)
        finally:
            server.stop()
        rows += firestore_figures(tmp, env, now)
    table(
        "Console API over 100,000 firings (24-hour query)",
        ["store", "endpoint", "calls", "p50 ms", "p99 ms"],
        rows,
    )
    return 0


def firestore_figures(tmp: Path, env: dict[str, str], now: datetime) -> list[list[str]]:
    from khook_local.ports import free_port
    from tests.support.firestore import find_emulator, start_emulator, stop_emulator
    from tests.support.functions import FunctionServer

    launcher, reason = find_emulator()
    if launcher is None:
        not_measured((), f"console on Firestore: no emulator ({reason})")
        if os.environ.get("CI") == "true":
            raise SystemExit(f"CI=true and the Firestore emulator is unavailable: {reason}")
        return []
    port = free_port()
    proc = start_emulator(launcher, port)
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    os.environ["GOOGLE_CLOUD_PROJECT"] = "demo-console-bench"
    try:
        started = time.perf_counter()
        fill_firestore(now)
        print(
            f"  wrote {FIRINGS:,} firings to the emulator in {time.perf_counter() - started:.1f} s"
        )
        server = FunctionServer(
            "console", tmp / "console-firestore.log", {**env, "KHOOK_STATE": "firestore"}, "http"
        )
        server.start()
        try:
            rows = measure_api("firestore", server.url, now)
        finally:
            server.stop()
        streamed_counts(now)
        aggregation_counts(now)
        audit_write_cost()
        return rows
    finally:
        stop_emulator(proc)


if __name__ == "__main__":
    sys.exit(main())
