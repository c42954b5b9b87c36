"""The ``khook`` CLI, as a subprocess, beside installed plugins that fail to load or validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event
from tests.support.paths import REPO
from tests.support.plugins import KAFKA_BOGUS


def cli(*args: str, site: Path | None = None, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **variables}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "khook_core.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_validate_fails_on_an_installed_plugin_that_cannot_be_imported(
    tmp_path: Path, plugins_on_path: Path
):
    config = make_config(tmp_path, SHOP_HOOK)
    result = cli("validate", "--config", str(config), site=plugins_on_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{config / 'plugins.yaml'}: plugin broken: cannot load ")
    disabled = cli(
        "validate", "--config", str(config), site=plugins_on_path, KHOOK_DISABLE_SOURCES="broken"
    )
    assert disabled.returncode == 0, disabled.stderr  # as the hint in the error says


def test_cli_validate_fails_on_a_plugin_with_invalid_config_in_one_line(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK, plugins=KAFKA_BOGUS)
    result = cli("validate", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"{config / 'plugins.yaml'}:5: plugin kafka: config.bogus: Extra inputs are not permitted"
    ]


def test_cli_replay_and_sources_work_beside_a_plugin_with_invalid_config(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK, plugins=KAFKA_BOGUS)
    replay = subprocess.run(
        [sys.executable, "-m", "khook_core.cli", "replay", "--source", "kubernetes",
         "--config", str(config), "--now", "2026-01-05T10:35:00Z"],
        input=json.dumps(core_event()), cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert "dispatched" in replay.stdout
    assert replay.stderr.count("plugin kafka: config.bogus") == 1  # logged once
    sources = cli("sources", "--config", str(config))
    assert sources.returncode == 1, sources.stderr  # the broken plugin is an ERROR row
    rows = {line.split("\t")[0]: line for line in sources.stdout.splitlines()}
    assert rows["kafka"] == (
        f"kafka\tERROR\t{config / 'plugins.yaml'}:5: plugin kafka: config.bogus: "
        "Extra inputs are not permitted"
    )
    assert rows["kubernetes"].startswith("kubernetes\t1.0.0\t")
    payload = tmp_path / "record.json"
    payload.write_text("{}")
    kafka = cli("replay", "--source", "kafka", "--config", str(config), str(payload))
    assert kafka.returncode == 1
    assert "plugin kafka: config.bogus" in kafka.stderr


def test_cli_sources_shows_a_broken_plugin_and_exits_1(plugins_on_path: Path):
    env = {"PYTHONPATH": str(plugins_on_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "khook_core.cli", "sources"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr  # a source in ERROR fails the listing
    rows = {line.split("\t")[0]: line for line in result.stdout.splitlines()}
    assert "ERROR" in rows["broken"]
    assert rows["ping"].startswith("ping\t2.1.0\tping-received")
