"""The public surface of khook_core is a sorted list whose every name resolves."""

from __future__ import annotations

import subprocess
import sys

import khook_core


def test_all_is_sorted_and_every_name_resolves():
    assert khook_core.__all__ == sorted(khook_core.__all__)
    assert set(khook_core.__all__) == set(khook_core._EXPORTS)
    for name in khook_core.__all__:
        assert getattr(khook_core, name) is not None


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
