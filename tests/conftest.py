"""Shared test set-up: fixture modules, a clean environment and helpers to build configs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from khook_core.runtime import reset_runtime

# Every module in tests/fixtures/ provides fixtures for real parts (emulators, servers).
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

REPO = Path(__file__).resolve().parents[1]
COMPAT = REPO / "tests" / "data" / "compat"


@pytest.fixture(autouse=True)
def isolate_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's KHOOK_/KAGENT_ settings or another test's runtime."""
    import os

    for name in list(os.environ):
        if name.startswith(("KHOOK_", "KAGENT_")):
            monkeypatch.delenv(name)
    reset_runtime()
    yield
    reset_runtime()
