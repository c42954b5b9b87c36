"""Shared test set-up: the fixture plugins in tests/support, a clean environment, markers by path.

A test's kind is where it lives: ``tests/unit/<concept>/`` (no process, no network, no emulator),
``tests/integration/<concept>/`` (a real emulator, database, server or binary started by a
fixture) or ``tests/e2e/`` (the whole chain across processes). The marker of the same name is set
here from the path, so ``pytest -m unit`` and ``pytest tests/unit`` select the same tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# Helpers in tests/support assert too; rewrite them so a failure shows the values, as in a test.
pytest.register_assert_rewrite("tests.support")

from khook_core.runtime import reset_runtime  # noqa: E402

# The tests/support modules that define fixtures (emulators, servers, function clients...).
pytest_plugins = [
    "tests.support.a2a_agent",
    "tests.support.browser",
    "tests.support.firestore",
    "tests.support.functions",
    "tests.support.kube_api",
    "tests.support.kube_real",
    "tests.support.plugins",
    "tests.support.postgres",
    "tests.support.pubsub",
    "tests.support.source_functions",
    "tests.support.terraform",
    "tests.support.webhook_receiver",
]

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test ``unit``, ``integration`` or ``e2e`` from the directory it lives in."""
    for item in items:
        try:
            kind = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue  # not under tests/ (a file named on the command line elsewhere)
        if kind not in KINDS:
            raise pytest.UsageError(
                f"{item.nodeid}: a test lives under tests/unit, tests/integration or tests/e2e"
            )
        item.add_marker(kind)


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
    _unfreeze()


def _unfreeze() -> None:
    """A function's start freezes the objects alive (``gc.freeze``); in a test session those
    include the test's own, which must stay collectable."""
    import gc

    if gc.get_freeze_count():
        gc.unfreeze()
