"""Importing what a function may import loads no heavy client at module level.

The import contracts in pyproject.toml (``make lint``) say which modules may import a client at
all, inside a function or not; this runs the imports and says what importing them costs: a
heavy client a module needs is imported inside the function that uses it, so a function pays
for it only when it uses it.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import khook_core

HEAVY = ("httpx", "kubernetes", "grpc", "google.cloud.pubsub", "google.cloud.firestore", "a2a")
NOT_IN_FUNCTIONS = ("khook_core.cli", "khook_core.forwarder")
"""Left out of every function archive (scripts/package.py), so never on a function's path."""
SENDERS = ("a2a", "jsonrpc", "lookup", "retry", "routing", "webhook")
"""The dispatchers that send over HTTP and their helpers: they import httpx at module level, and
only they; a function loads them when its dispatcher is built (never for dry-run)."""
ASKERS = (
    "khook_core.tracking.agent_calls",
    "khook_core.reporting.delivery",
    "khook_core.approvals.announce",
)
"""What asks agents about their tasks, reports their findings and announces approvals (the
sweep tick's, over the dispatchers' sender)."""

PROBE = """
import importlib, json, sys
heavy = tuple(sys.argv[1].split(","))
loaded = {}
for name in sys.argv[2:]:
    importlib.import_module(name)
    loaded[name] = sorted(m for m in sys.modules if m.startswith(heavy))
print(json.dumps(loaded))
"""


def function_path_modules() -> list[str]:
    """Every khook_core module a function may import, the senders last."""
    names = [
        info.name
        for info in pkgutil.walk_packages(khook_core.__path__, "khook_core.")
        if not info.name.startswith(NOT_IN_FUNCTIONS)
    ]
    senders = [f"khook_core.dispatch.{s}" for s in SENDERS] + list(ASKERS)
    assert set(senders) <= set(names)
    return [n for n in names if n not in senders] + senders


def test_no_function_module_loads_a_heavy_client_and_only_the_senders_load_httpx():
    modules = function_path_modules()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(HEAVY), *modules],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: dict[str, list[str]] = json.loads(done.stdout)
    first_sender = f"khook_core.dispatch.{SENDERS[0]}"
    before_senders = modules[: modules.index(first_sender)]
    assert len(before_senders) > 50
    assert loaded[before_senders[-1]] == []
    assert {m.partition(".")[0] for m in loaded[modules[-1]]} == {"httpx"}
