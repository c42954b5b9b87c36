"""Discovery through the ``khook.sources`` entry-point group, with real distributions on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from khook_core.errors import ConfigError, PluginLoadError
from khook_core.event import utcnow
from khook_core.mapping import MappingTable
from khook_core.runtime import load_config
from khook_core.sources.base import SourceContext
from khook_core.sources.registry import PluginSettings, SourceRegistry
from tests.configdir import SHOP_HOOK, make_config
from tests.conftest import REPO
from tests.unit.k8s_events import core_event

PLUGIN = """
from pydantic import BaseModel
from khook_core.event import Event, Resource, stable_id, utcnow

class PingConfig(BaseModel):
    greeting: str = "hi"

class PingSource:
    name = "ping"
    version = "2.1.0"
    event_types = ("ping-received",)
    config_model = PingConfig

    def __init__(self, config, context):
        self.config = config

    def normalize(self, raw, attributes):
        return [Event(id=stable_id("ping", raw), source="ping", type="ping-received",
                      message=self.config.greeting, timestamp=utcnow())]
"""


@pytest.fixture
def plugins_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed third-party distributions: one good, one whose module does not import."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "khook_ping.py").write_text(PLUGIN)
    for dist, entry in (
        ("khook_ping", "ping = khook_ping:PingSource"),
        ("khook_broken", "broken = khook_missing_module:Nope"),
    ):
        info = site / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[khook.sources]\n{entry}\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def registry(
    plugins: PluginSettings | None = None, disabled: frozenset[str] = frozenset()
) -> SourceRegistry:
    return SourceRegistry(SourceContext(clock=utcnow, mapping=MappingTable()), plugins, disabled)


def test_builtin_and_third_party_sources_are_discovered_the_same_way(plugins_on_path: Path):
    reg = registry()
    assert {"kubernetes", "ping", "broken"} <= set(reg.names())
    assert reg.get("ping").normalize({"a": 1}, {})[0].message == "hi"
    assert reg.source_class("kubernetes").version == "1.0.0"


def test_a_broken_plugin_is_reported_by_name_and_the_others_keep_working(plugins_on_path: Path):
    reg = registry()
    loaded = reg.load_all()
    assert "kubernetes" in loaded
    assert "ping" in loaded
    assert "broken" not in loaded
    error = reg.errors["broken"]
    assert error.name == "broken"
    assert "khook_missing_module" in error.reason
    with pytest.raises(PluginLoadError, match=r"^plugin broken: cannot load") as info:
        reg.get("broken")
    assert info.value is error  # kept: later requests fail the same way, without a retry
    assert "\n" not in str(error)
    assert "(from khook_broken 1.0)" in error.reason


def test_plugin_config_is_validated_by_its_model(tmp_path: Path, plugins_on_path: Path):
    path = tmp_path / "plugins.yaml"
    path.write_text("plugins:\n- name: ping\n  config:\n    greeting: 5\n")
    with pytest.raises(PluginLoadError) as info:
        registry(PluginSettings.load(path)).get("ping")
    assert (
        str(info.value) == f"{path}:4: plugin ping: config.greeting: Input should be a valid string"
    )
    assert (info.value.file, info.value.line) == (str(path), 4)
    path.write_text("plugins:\n- name: ping\n  config:\n    greeting: hello\n")
    assert registry(PluginSettings.load(path)).get("ping").normalize(1, {})[0].message == "hello"


def test_disabled_sources_are_not_loaded(tmp_path: Path, plugins_on_path: Path):
    path = tmp_path / "plugins.yaml"
    path.write_text("plugins:\n- name: ping\n  enabled: false\n")
    reg = registry(PluginSettings.load(path), disabled=frozenset({"broken"}))
    assert "ping" not in reg.names()
    assert "broken" not in reg.names()
    with pytest.raises(PluginLoadError, match="disabled"):
        reg.get("ping")


def test_khook_plugins_file_loads_and_path_entries_are_reported_as_ignored():
    settings = PluginSettings.load(REPO / "tests" / "data" / "compat" / "khook-plugins.yaml")
    assert set(settings.entries) == {"kubernetes", "kafka", "prometheus", "webhook"}
    assert len(settings.notes) == 3
    assert all("'path' is ignored" in n.message for n in settings.notes)


KAFKA_BOGUS = "plugins:\n- name: kubernetes\n- name: kafka\n  config:\n    bogus: 1\n"


def test_a_listed_plugin_that_fails_to_validate_stops_no_other_source(tmp_path: Path):
    config_dir = make_config(tmp_path, SHOP_HOOK, plugins=KAFKA_BOGUS)
    config = load_config(config_dir)  # the runtime's load: not fatal
    error = config.sources.errors["kafka"]
    assert str(error) == (
        f"{config_dir / 'plugins.yaml'}:5: plugin kafka: config.bogus: "
        "Extra inputs are not permitted"
    )
    assert config.sources.get("kubernetes").name == "kubernetes"
    with pytest.raises(PluginLoadError) as info:
        config.sources.get("kafka")
    assert info.value is error


def test_every_config_error_of_a_plugin_is_on_one_line(tmp_path: Path):
    plugins = "plugins:\n- name: kafka\n  config:\n    bogus: 1\n    requireMetadata: maybe\n"
    config = load_config(make_config(tmp_path, SHOP_HOOK, plugins=plugins))
    error = config.sources.errors["kafka"]
    assert "\n" not in str(error)
    assert error.reason == (
        "config.bogus: Extra inputs are not permitted; "
        "config.requireMetadata: Input should be a valid boolean, unable to interpret input"
    )


def test_validate_reports_an_enabled_plugin_that_fails_by_name(
    tmp_path: Path, plugins_on_path: Path
):
    config = make_config(
        tmp_path, SHOP_HOOK, plugins="plugins:\n- name: kubernetes\n- name: broken\n"
    )
    assert "broken" in load_config(config).sources.errors  # the runtime keeps working
    with pytest.raises(ConfigError) as info:
        load_config(config, check_sources=True)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(config / "plugins.yaml"), 3)
    assert problem.message.startswith("plugin broken: cannot load khook_missing_module:Nope")


def test_validate_loads_every_installed_source_not_only_the_listed_ones(
    tmp_path: Path, plugins_on_path: Path
):
    config = make_config(tmp_path, SHOP_HOOK, plugins="plugins:\n- name: kubernetes\n")
    assert load_config(config).sources.errors == {}  # unlisted sources load on first use
    with pytest.raises(ConfigError) as info:
        load_config(config, check_sources=True)
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == (str(config / "plugins.yaml"), None)
    assert problem.message.startswith(
        "plugin broken: cannot load khook_missing_module:Nope (from khook_broken 1.0): "
        "ModuleNotFoundError: No module named 'khook_missing_module'"
    )
    assert "KHOOK_DISABLE_SOURCES" in problem.message
    disabled = load_config(config, check_sources=True, disabled_sources=frozenset({"broken"}))
    assert "ping" in disabled.sources.names()


def test_a_listed_plugin_that_is_not_installed_fails_only_its_own_requests(tmp_path: Path):
    config = load_config(
        make_config(tmp_path, SHOP_HOOK, plugins="plugins:\n- name: kubernetes\n- name: nats\n")
    )
    error = config.sources.errors["nats"]
    assert error.line == 3
    assert error.reason.startswith("not installed (installed: alertmanager, ")
    assert config.sources.get("kubernetes").name == "kubernetes"


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
