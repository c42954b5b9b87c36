"""Console figures: the API over 100,000 stored firings, and the dashboard's page load.

The issue's figures, with no budget in design.md's table yet (reported, not judged):

- p50/p99 of ``GET /api/v1/firings`` for the last 24 hours (first page of 50) and of
  ``GET /api/v1/counts`` for the same day, served by functions/console under
  functions-framework, over 100,000 firings spread over 48 hours (half of them in the range),
  on SQLite and on the Firestore emulator;
- the dashboard in headless Chromium over the SQLite data: first contentful paint, and the
  moment every panel is drawn from the API's answers (the first meaningful paint), median of
  several loads.

Without the Firestore emulator or Chromium those figures are recorded as not measured.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
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
COUNTS_CALLS = {"sqlite": 40, "firestore": 5}
"""Counting streams the day's 50,000 records out of the emulator: seconds each, so fewer."""
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
    from google.cloud import firestore

    client = firestore.Client()
    batch = client.batch()
    for i in range(FIRINGS):
        batch.create(
            client.collection("firings").document(), audit_fields.to_document(synthetic(i, now))
        )
        if i % 500 == 499:
            batch.commit()
            batch = client.batch()
    batch.commit()
    client.close()


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
            return measure_api("firestore", server.url, now)
        finally:
            server.stop()
    finally:
        stop_emulator(proc)


if __name__ == "__main__":
    sys.exit(main())
