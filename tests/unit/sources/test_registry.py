"""Discovery through the ``khook.sources`` entry-point group, with real distributions on disk."""

from __future__ import annotations

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
    with pytest.raises(PluginLoadError, match="source plugin 'broken'"):
        reg.get("broken")


def test_plugin_config_is_validated_by_its_model(tmp_path: Path, plugins_on_path: Path):
    path = tmp_path / "plugins.yaml"
    path.write_text("plugins:\n- name: ping\n  config:\n    greeting: 5\n")
    with pytest.raises(PluginLoadError, match=r"invalid config \(.*plugins.yaml:2\)"):
        registry(PluginSettings.load(path)).get("ping")
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


def test_validate_reports_an_enabled_plugin_that_fails_by_name(
    tmp_path: Path, plugins_on_path: Path
):
    config = make_config(
        tmp_path, SHOP_HOOK, plugins="plugins:\n- name: kubernetes\n- name: broken\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    (problem,) = info.value.problems
    assert problem.line == 3
    assert "source plugin 'broken'" in problem.message


def test_cli_sources_shows_a_broken_plugin_without_failing(plugins_on_path: Path):
    env = {"PYTHONPATH": str(plugins_on_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "khook_core.cli", "sources"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split("\t")[0]: line for line in result.stdout.splitlines()}
    assert "ERROR" in rows["broken"]
    assert rows["ping"].startswith("ping\t2.1.0\tping-received")
