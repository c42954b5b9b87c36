"""Durations are read in one place (``timeparse``), so every reader accepts the same forms.

One table of what is a duration and what is not; then each reader (hook files, budgets.yaml,
the environment, the forwarder's flags, ``khook --since``, the local Pub/Sub bus) is run on
the same texts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from khook_core.cli import options
from khook_core.errors import ConfigError
from khook_core.forwarder import cli as forwarder_cli
from khook_core.hooks import load_hooks
from khook_core.settings import Settings
from khook_core.storm.config import RateLimit
from khook_core.timeparse import parse_duration, parse_seconds
from khook_local import bus

DURATIONS: list[tuple[str | float, float]] = [
    ("90s", 90.0),
    ("10m", 600.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("2h45m10s", 9910.0),
    ("1m30.5s", 90.5),
    ("1.5h", 5400.0),
    (".5s", 0.5),
    ("500ms", 0.5),
    ("250us", 0.00025),
    ("250µs", 0.00025),
    ("100ns", 1e-7),
    ("600", 600.0),
    ("2.5", 2.5),
    ("0", 0.0),
    (" 30m ", 1800.0),
    (90, 90.0),
    (1.5, 1.5),
]
"""(duration, seconds): Go syntax, one number with a unit, plain seconds, a YAML number."""

NOT_DURATIONS = [
    "",
    " ",
    "abc",
    "10x",
    "s10",
    "1m30",
    "1d",
    "10 m",
    "1h 30m",
    "m",
    ".",
    "1.2.3s",
    "-5m",
    "-5",
    "+5s",
    "1e3",
    "nan",
    "inf",
    "5 seconds",
]
"""Text with a sign, an exponent, a space inside, an unknown or missing unit."""


@pytest.mark.parametrize(("value", "seconds"), DURATIONS, ids=[repr(d) for d, _ in DURATIONS])
def test_a_duration_is_read_as_seconds(value: str | float, seconds: float):
    assert parse_seconds(value) == pytest.approx(seconds)
    assert parse_duration(value).total_seconds() == pytest.approx(seconds, abs=1e-6)  # µs


@pytest.mark.parametrize("text", NOT_DURATIONS)
def test_anything_else_is_refused_naming_the_value_and_the_forms(text: str):
    with pytest.raises(ValueError, match=r"invalid duration .*Go syntax such as 90s, 10m, 1h30m"):
        parse_seconds(text)


def hook_window(tmp_path: Path, text: str) -> float:
    hook = tmp_path / "hook.yaml"
    hook.write_text(
        "apiVersion: kagent.dev/v1alpha2\nkind: Hook\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  eventConfigurations:\n  - eventType: pod-restart\n"
        f"    agentRef: {{name: k8s-agent}}\n    prompt: restarted\n    dedupWindow: '{text}'\n"
    )
    window = load_hooks([hook], None).rules[0].dedup_window
    assert window is not None
    return window.total_seconds()


def since(text: str) -> float:
    start = options.since(text)
    assert start is not None
    return round((datetime.now().astimezone() - start).total_seconds())


READERS: dict[str, Callable[[Path, str], float]] = {
    "hook dedupWindow": hook_window,
    "budgets.yaml rateLimit.per": lambda _, t: RateLimit(runs=1, per=t).per.total_seconds(),
    "KHOOK_DEDUP_WINDOW": lambda _, t: (
        Settings.from_env({"KHOOK_DEDUP_WINDOW": t}).dedup_window or 0.0
    ),
    "KAGENT_API_TIMEOUT": lambda _, t: (
        Settings.from_env({"KAGENT_API_TIMEOUT": t}).dispatchers.kagent_api_timeout
    ),
    "khook-forwarder --lookback-seconds": lambda _, t: (
        forwarder_cli.settings_from([f"--lookback-seconds={t}"], {}).lookback_seconds
    ),
    "khook --since": lambda _, t: since(t),
    "local bus retry backoff": lambda _, t: bus.parse_duration(t, 10.0),
}
SAME_TEXTS = [("90s", 90.0), ("1m30s", 90.0), ("1.5m", 90.0), ("90", 90.0), ("90000ms", 90.0)]
"""Forms every reader takes (90 s is inside every reader's bounds)."""


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(("text", "seconds"), SAME_TEXTS)
def test_every_reader_takes_the_same_forms(tmp_path: Path, reader: str, text: str, seconds: float):
    assert READERS[reader](tmp_path, text) == pytest.approx(seconds, abs=1)


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("text", ["10x", "-90s", "1m30"])
def test_every_reader_refuses_the_same_forms(tmp_path: Path, reader: str, text: str):
    with pytest.raises((ValueError, ConfigError, options.UsageError, bus.BusError)):
        READERS[reader](tmp_path, text)
