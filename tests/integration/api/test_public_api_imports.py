"""Importing khook_core in a fresh interpreter loads none of the heavy clients."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_imports_nothing_heavy():
    heavy = (
        "pydantic",
        "yaml",
        "httpx",
        "kubernetes",
        "grpc",
        "google.cloud.pubsub",
        "google.cloud.firestore",
        "cel_expr_python",
    )
    code = (
        f"import sys, khook_core; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
