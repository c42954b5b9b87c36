"""Shared printing for benchmarks: one line per figure, beside its budget, pass or miss."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(os.environ.get("KHOOK_BENCH_RESULTS", ".khook/bench-results.jsonl"))


def figure(name: str, value: float, unit: str, budget: str, ok: bool | None) -> None:
    """Print one figure and append it to the results file that docs/benchmarks.md is built from."""
    verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
    print(f"  {name:<58} {value:>12,.2f} {unit:<8} budget {budget:<14} {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(
            json.dumps(
                {
                    "name": name,
                    "value": value,
                    "unit": unit,
                    "budget": budget,
                    "verdict": verdict,
                    "machine": machine(),
                }
            )
            + "\n"
        )


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
