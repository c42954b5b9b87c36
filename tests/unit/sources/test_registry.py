"""Discovery through the ``khook.sources`` entry-point group, with real distributions on disk."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from khook_core.errors import ConfigError, PluginLoadError
from khook_core.event import utcnow
from khook_core.mapping import MappingTable
from khook_core.runtime import load_config
from khook_core.sources.base import SourceContext
from khook_core.sources.registry import (
    ENTRY_POINT_GROUP,
    PluginSettings,
    SourceRegistry,
    installed_points,
)
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.paths import REPO
from tests.support.plugins import KAFKA_BOGUS


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


def test_discovery_finds_what_importlib_entry_points_finds(
    plugins_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The cold start's scan reads only the distributions that declare the group, and still
    sees what ``entry_points(group=...)`` sees: a copy shadowed by an earlier one on the path
    (here without the group) is left out, as importlib leaves it out."""
    shadow = tmp_path / "shadow"
    info = shadow / "khook_broken-0.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: khook_broken\nVersion: 0.9\n")
    monkeypatch.syspath_prepend(str(shadow))

    expected = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found = installed_points()

    assert found == expected
    assert "ping" in found
    assert "broken" not in found  # shadowed by khook_broken 0.9, which declares no source
    assert {"kubernetes", "alertmanager", "webhook"} <= found.keys()
