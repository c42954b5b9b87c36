"""Metrics text, backoff schedule, settings and flags: the forwarder's operational surface."""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from khook_core.forwarder import cli
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.metrics import ForwarderMetrics
from tests.support.forwarder import REPO

SAMPLE = re.compile(r'^(khook_forwarder_[a-z_]+)(\{[a-z]+="(?:[^"\\]|\\.)*"\})? (-?[0-9.]+)$')


def test_metrics_render_as_prometheus_text():
    ticks = iter([100.0, 101.0, 104.5])
    metrics = ForwarderMetrics(clock=lambda: next(ticks))
    metrics.event_seen("ADDED")
    metrics.event_filtered("normal")
    metrics.event_filtered('we"ird')
    metrics.messages_dropped("queue-full", 3)
    metrics.queue_depth = lambda: 42

    text = metrics.render()

    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) khook_forwarder_\w+ ", line)
            continue
        match = SAMPLE.match(line)
        assert match, line
        samples[match[1] + (match[2] or "")] = float(match[3])
    assert samples['khook_forwarder_events_seen_total{type="ADDED"}'] == 1
    assert samples['khook_forwarder_events_filtered_total{reason="we\\"ird"}'] == 1
    assert samples['khook_forwarder_messages_dropped_total{reason="queue-full"}'] == 3
    assert samples["khook_forwarder_queue_depth"] == 42
    assert samples["khook_forwarder_last_event_age_seconds"] == 3.5
    assert "# TYPE khook_forwarder_relists_total counter" in text


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets():
    backoff = Backoff(0.5, 4.0, rng=random.Random(7))

    delays = [backoff.next() for _ in range(6)]

    for delay, ceiling in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next() <= 0.5


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KHOOK_TOPIC", "from-env")
    monkeypatch.setenv("KHOOK_FORWARDER_NAMESPACES", "shop, payments")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("PORT", "9999")  # an unrelated container's variable must not leak in

    from_env = cli.settings_from([], os.environ)
    from_flags = cli.settings_from(
        ["--topic", "from-flag", "--forward-all", "--api", "v1", "--queue-size", "7"], os.environ
    )

    assert from_env.topic_path() == "projects/p1/topics/from-env"
    assert from_env.namespaces == ("shop", "payments")
    assert from_env.port == 8080
    assert from_flags.topic == "from-flag"
    assert from_flags.forward_all is True
    assert from_flags.api == "v1"
    assert from_flags.queue_size == 7


def test_every_setting_has_a_flag_and_a_description():
    parser = cli.build_parser()
    flags = {a.dest for a in parser._actions}

    for name, info in ForwarderSettings.model_fields.items():
        assert name in flags
        assert info.description, f"{name} has no docstring"


def test_the_command_refuses_a_topic_without_project(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCP_PROJECT", raising=False)

    assert cli.main(["--topic", "khook-kubernetes"]) == 2
    assert "GOOGLE_CLOUD_PROJECT" in capsys.readouterr().err


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``cli.main`` configures the root logger, as an entry point should; undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level


@pytest.mark.usefixtures("restore_logging")
def test_the_command_refuses_a_missing_mapping_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code = cli.main(
        [
            "--topic",
            "projects/p1/topics/t",
            "--config-dir",
            str(tmp_path),
            "--log-format",
            "json",
            "--kube-api-url",
            "http://127.0.0.1:9",
        ]
    )

    assert code == 2
    assert "event-mappings.yaml" in capsys.readouterr().out


def test_every_setting_is_documented_with_its_flag_and_variable():
    doc = (REPO / "docs" / "forwarder.md").read_text()

    for name in ForwarderSettings.model_fields:
        flag = "--" + name.replace("_", "-")
        assert f"| `{flag}` | `KHOOK_FORWARDER_{name.upper()}`" in doc, flag
