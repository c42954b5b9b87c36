"""Fixtures for the alertmanager, webhook, kafka and cdc sources and their functions.

- ``source_config``: a config directory with the project's mappings, a plugins.yaml and hooks
  for every event type here.
- ``function_env``: the environment a function reads (dry-run, memory state, that config).
- ``http_client`` / ``cloudevent_client``: functions-framework test clients of a function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import reset_runtime
from tests.support.paths import REPO
from tests.support.sources import HOOKS, write_config


@pytest.fixture
def source_config(tmp_path: Path) -> Callable[..., Path]:
    """``source_config(plugins=..., hooks=...)`` → a config directory."""
    return lambda **kwargs: write_config(tmp_path, **kwargs)


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, source_config: Callable[..., Path]
) -> Callable[..., Path]:
    """Point a function at a fresh config: ``function_env(plugins=..., **env)``."""

    def apply(plugins: str = "plugins: []\n", hooks: str = HOOKS, **env: str) -> Path:
        config = source_config(plugins=plugins, hooks=hooks)
        values = {
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_STATE": "memory",
            "KHOOK_DISPATCH": "dry-run",
            "KHOOK_LOG_FORMAT": "text",
            **env,
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reset_runtime()
        return config

    return apply


def _create_app(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import functions_framework

    # create_app writes these into os.environ; monkeypatch restores them after the test.
    monkeypatch.setenv("FUNCTION_TARGET", "handle")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
    source = str(REPO / "functions" / name / "main.py")
    return functions_framework.create_app("handle", source)  # type: ignore[no-untyped-call]


@pytest.fixture
def http_client(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """A Flask test client of ``functions/<name>/main.py``."""
    return lambda name: _create_app(name, monkeypatch).test_client()


@pytest.fixture
def cloudevent_client(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """A Flask test client of a CloudEvent function; post ``push_body(...)`` to a topic path."""
    return lambda name: _create_app(name, monkeypatch).test_client()
