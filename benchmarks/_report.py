"""Shared printing for benchmarks: one line per figure, beside its budget, pass or miss.

Every record goes to the results file (``.khook/bench-results.jsonl``, or
``$KHOOK_BENCH_RESULTS``) that ``scripts/bench_report.py`` turns into docs/benchmarks.md:

* ``figure(...)``: one measured figure; ``covers`` names the budgets of design.md's table
  (``BUDGETS`` below) that it is checked against;
* ``not_measured(...)``: a budget this run could not measure, and why (no emulator, a broken
  set-up), so the report says "not measured" instead of dropping the row;
* ``table(...)``: a small breakdown the report prints under the figures;
* ``python benchmarks/_report.py exited <benchmark> <status>``: what ``make bench`` records
  after each benchmark, so a benchmark that stopped early shows in the report.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

RESULTS = Path(os.environ.get("KHOOK_BENCH_RESULTS", ".khook/bench-results.jsonl"))

FUNCTIONS = ("kubernetes", "alertmanager", "webhook", "kafka", "cdc", "sweep")


class Budget(NamedTuple):
    """One budget of design.md's "Performance budgets" table, and the benchmark measuring it."""

    what: str
    budget: str
    benchmark: str


def _budgets() -> dict[str, Budget]:
    """Every budget of design.md's table, split where one row states several."""
    budgets: dict[str, Budget] = {}
    for name in FUNCTIONS:
        bench = "kubernetes_function.py" if name == "kubernetes" else "sources_cold_start.py"
        budgets[f"cold-start:{name}"] = Budget(
            f"functions/{name} cold start: fresh process, import + first event handled "
            "(memory state, local A2A agent)",
            "<= 250 ms median",
            bench,
        )
        budgets[f"module-import:{name}"] = Budget(
            f"functions/{name} import (functions_framework + main.py) over `import "
            "functions_framework, pydantic`, same run",
            "<= 1.20x",
            bench,
        )
    budgets |= {
        "pipeline:rate": Budget(
            "pipeline throughput, Kubernetes Events, one core, dry-run dispatch",
            ">= 20,000 events/s",
            "pipeline.py",
        ),
        "pipeline:ratio": Budget(
            "pipeline cost over `json.loads` + `Event.model_validate` on "
            "the same payloads, same run, storm mix",
            "<= 2.0x",
            "pipeline.py",
        ),
        "pipeline:unique-ratio": Budget(
            "the same, all unique (every event claims, renders, dispatches, records)",
            "<= 4.0x",
            "pipeline.py",
        ),
        "pipeline:redaction": Budget(
            "pipeline cost with redaction over the same run without it", "<= 1.15x", "redaction.py"
        ),
        "pipeline:correlation": Budget(
            "pipeline cost with `correlate:` on every hook over the same run without it",
            "<= 1.20x",
            "pipeline.py",
        ),
        "function-rate:memory": Budget(
            "functions/kubernetes requests/s over a hello-world functions-framework function "
            "that only decodes the message, same run, memory state",
            ">= 0.90x",
            "function_requests.py",
        ),
        "function-rate:sqlite": Budget(
            "the same, SQLite state", ">= 0.85x", "function_requests.py"
        ),
        "forwarder:rate": Budget(
            "forwarder into the Pub/Sub emulator, sustained", ">= 5,000 events/s", "forwarder.py"
        ),
        "forwarder:rss": Budget(
            "forwarder peak RSS through a 20,000-event storm", "<= 50 MiB", "forwarder.py"
        ),
        "forwarder:lost": Budget(
            "forwarder: nothing lost (every event published or counted as filtered)",
            "0 events",
            "forwarder.py",
        ),
        "forwarder-real:list-rate": Budget(
            "forwarder's first list of 20,000 Events from a real kube-apiserver, into the "
            "Pub/Sub emulator",
            ">= 2,000 events/s",
            "forwarder_kube.py",
        ),
        "forwarder-real:storm-lag": Budget(
            "forwarder behind a live storm on a real kube-apiserver: last event published "
            "after the last one was created",
            "<= 5 s",
            "forwarder_kube.py",
        ),
        "forwarder-real:rss": Budget(
            "forwarder peak RSS against a real kube-apiserver (idle, first list of 20,000, "
            "live storm): within the manifest's memory request",
            "<= 128 MiB",
            "forwarder_kube.py",
        ),
        "e2e:p50": Budget(
            "local end to end: watch → forwarder → emulator → push → function → "
            "A2A agent, at 50 events/s, p50",
            "<= 150 ms",
            "kubernetes_function.py",
        ),
        "e2e:p99": Budget(
            "local end to end at 50 events/s, p99", "<= 500 ms", "kubernetes_function.py"
        ),
        "dedup": Budget(
            "dedup under concurrency: 8 processes, 1,000 duplicate deliveries, Firestore emulator",
            "exactly one dispatch a key",
            "dispatch.py",
        ),
    }
    return budgets


BUDGETS = _budgets()


def figure(
    name: str,
    value: float,
    unit: str,
    budget: str,
    ok: bool | None,
    *,
    covers: str | Iterable[str] = (),
) -> None:
    """Print one figure and append it to the results file that docs/benchmarks.md is built from.

    ``covers``: the ``BUDGETS`` key(s) this figure is checked against (none for figures that
    only explain others).
    """
    verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
    print(f"  {name:<58} {value:>12,.2f} {unit:<8} budget {budget:<14} {verdict}")
    _append(
        {
            "kind": "figure",
            "name": name,
            "value": value,
            "unit": unit,
            "budget": budget,
            "verdict": verdict,
            "covers": _keys(covers),
        }
    )


def not_measured(covers: str | Iterable[str], reason: str) -> None:
    """Record that this run has no figure for the given budgets, and why."""
    keys = _keys(covers)
    print(f"  NOT MEASURED {', '.join(keys)}: {reason}")
    _append({"kind": "not-measured", "covers": keys, "reason": reason})


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> None:
    """A small breakdown for the report (printed there under the figures)."""
    _append(
        {
            "kind": "table",
            "title": title,
            "header": list(header),
            "rows": [list(r) for r in rows],
            "note": note,
        }
    )


def exited(benchmark: str, status: int) -> None:
    """Record a benchmark's exit status (``make bench`` calls this after each one)."""
    _append({"kind": "exit", "status": status}, benchmark=Path(benchmark).name)


def _keys(covers: str | Iterable[str]) -> list[str]:
    keys = [covers] if isinstance(covers, str) else list(covers)
    unknown = [k for k in keys if k not in BUDGETS]
    if unknown:
        raise ValueError(f"unknown budget key(s) {unknown}; known: {sorted(BUDGETS)}")
    return keys


def _append(record: dict[str, Any], benchmark: str | None = None) -> None:
    record = {**record, "benchmark": benchmark or Path(sys.argv[0]).name, "machine": machine()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "exited":
        sys.exit("usage: _report.py exited <benchmark> <exit status>")
    exited(sys.argv[2], int(sys.argv[3]))
