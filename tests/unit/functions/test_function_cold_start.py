"""Every function refuses to start on what would make it drop events, through the real
functions-framework ``create_app`` (the import of ``main.py`` is the cold start).

Before, a hook that could never fire loaded without a word, and a function whose own source
was missing acknowledged and dropped every message as "unknown source".
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.errors import ConfigError, PluginLoadError
from tests.support.configdir import DISK_FULL_HOOK, MISSPELT_SOURCE_HOOK
from tests.support.functions import SIGNATURES as FUNCTIONS
from tests.support.paths import REPO

NEVER_FIRING = (
    MISSPELT_SOURCE_HOOK
    + "---\n"
    + DISK_FULL_HOOK
    + """\
  - eventType: pod-restart
    webhook:
      url: https://hooks.example.com/notify
      body: {text: "Pod {{.Podname}} restarted"}
    prompt: "Pod {{.ResourceName}} restarted"
"""
)
"""One hook of each never-firing kind: a misspelt source, a type its source never produces (a
plain Hook is a Kubernetes hook) and a webhook body with an unknown placeholder."""


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """``start(name)``: load ``functions/<name>/main.py`` as a cold start does (create_app).

    ``main.py`` configures logging at import; the root logger is put back afterwards.
    """
    import functions_framework

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def create(name: str) -> Any:
        # create_app writes these into os.environ; monkeypatch restores them after the test.
        monkeypatch.setenv("FUNCTION_TARGET", "handle")
        monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", FUNCTIONS[name])
        main = str(REPO / "functions" / name / "main.py")
        return functions_framework.create_app("handle", main, FUNCTIONS[name])  # type: ignore[no-untyped-call]

    try:
        yield create
    finally:
        root.handlers, root.level = handlers, level


@pytest.fixture
def without_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``without_source(name)``: this project's distribution, as installed without one source.

    A copy of its metadata without that ``khook.sources`` entry point goes first on the path,
    where ``importlib.metadata`` finds it before the real one: what a build whose metadata
    lacks the source looks like to the function.
    """

    def remove(name: str) -> None:
        dist = importlib.metadata.distribution("khook-serverless")
        info = tmp_path / "site" / f"khook_serverless-{dist.version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(dist.read_text("METADATA") or "")
        entry_points = dist.read_text("entry_points.txt") or ""
        kept = [line for line in entry_points.splitlines() if not line.startswith(f"{name} =")]
        assert len(kept) == len(entry_points.splitlines()) - 1
        (info / "entry_points.txt").write_text("\n".join(kept) + "\n")
        monkeypatch.syspath_prepend(str(info.parent))

    return remove


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_hook_that_can_never_fire_fails_every_function_cold_start(
    function_env: Callable[..., Path], start: Callable[[str], Any], name: str
):
    config = function_env(hooks=NEVER_FIRING)
    hooks_file = config / "hooks" / "hooks.yaml"
    with pytest.raises(ConfigError) as info:
        start(name)
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 3
    assert problems[0].startswith(
        f"{hooks_file}:5: hook monitoring/alerts: spec.sources[0]: unknown source 'alertmnager'"
    )
    assert problems[0].endswith("; did you mean 'alertmanager'?")
    assert problems[1].startswith(
        f"{hooks_file}:16: hook shop/disks: spec.eventConfigurations[0].eventType: 'disk-full' "
        "never fires: the mapping table has it for alertmanager, prometheus only"
    )
    assert problems[2].startswith(
        f"{hooks_file}:22: hook shop/disks: spec.eventConfigurations[1].webhook.body.text: "
        "unknown placeholder {{.Podname}}"
    )


@pytest.mark.parametrize("name", ["alertmanager", "kafka"])
def test_a_function_whose_source_is_not_installed_fails_its_cold_start_naming_it(
    function_env: Callable[..., Path],
    start: Callable[[str], Any],
    without_source: Callable[[str], None],
    name: str,
):
    function_env()
    without_source(name)
    with pytest.raises(PluginLoadError) as info:
        start(name)
    assert info.value.name == name
    assert str(info.value).startswith(f"plugin {name}: not installed (installed: ")
    assert f"entry point is named {name!r}" in str(info.value)


def test_a_function_whose_source_is_disabled_by_the_environment_fails_its_cold_start(
    function_env: Callable[..., Path], start: Callable[[str], Any]
):
    function_env(KHOOK_DISABLE_SOURCES="cdc,kafka")
    with pytest.raises(PluginLoadError, match="plugin kafka: disabled by KHOOK_DISABLE_SOURCES"):
        start("kafka")
    assert start("webhook") is not None  # the other sources are the ones not to load


def test_a_function_whose_source_is_disabled_in_plugins_yaml_fails_its_cold_start(
    function_env: Callable[..., Path], start: Callable[[str], Any]
):
    config = function_env(plugins="plugins:\n- name: cdc\n  enabled: false\n")
    with pytest.raises(PluginLoadError) as info:
        start("cdc")
    assert str(info.value).startswith(
        f"{config / 'plugins.yaml'}:2: plugin cdc: enabled: false, but this function serves it"
    )


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_start_freezes_what_it_built_out_of_the_collectors_reach(
    function_env: Callable[..., Path], start: Callable[[str], Any], name: str
):
    """Full collections walk every tracked object; the start's live for the instance's life."""
    import gc

    function_env()
    gc.unfreeze()
    start(name)
    assert gc.get_freeze_count() > 1000
