"""A snapshot's files load with the one loader, and its problems name the snapshot and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from khook_core.errors import ConfigError
from khook_core.liveconfig import snapshot
from tests.support.configdir import make_config, restart_hook


def test_the_files_of_a_directory_load_as_the_directory_does(tmp_path: Path):
    config_dir = make_config(tmp_path, restart_hook())
    (config_dir / "hooks" / "team").mkdir()
    (config_dir / "hooks" / "team" / "api.yml").write_text(restart_hook(name="api"))
    (config_dir / "notes.txt").write_text("not configuration")

    files = snapshot.files_of(config_dir)
    config = snapshot.load_files(files, label="snapshot v3", version="3")

    assert sorted(files) == [
        "event-mappings.yaml",
        "hooks/hooks.yaml",
        "hooks/team/api.yml",
        "plugins.yaml",
    ]
    assert config.hooks.hooks() == ["shop/api", "shop/shop-restarts"]
    assert config.version == "3"
    assert "snapshot v3" in config.plugins.file


def test_every_problem_names_the_snapshot_and_the_file(tmp_path: Path):
    files = snapshot.files_of(make_config(tmp_path, restart_hook(prompt="{{.Podname}}")))
    files["hooks/more.yaml"] = restart_hook(name="more", agent="")

    with pytest.raises(ConfigError) as caught:
        snapshot.load_files(files, label="snapshot v4", version="4")

    where = sorted({p.file for p in caught.value.problems})
    assert where == ["snapshot v4/hooks/hooks.yaml", "snapshot v4/hooks/more.yaml"]
    assert "{{.Podname}}" in str(caught.value)


@pytest.mark.parametrize("name", ["../escape.yaml", "/etc/hooks.yaml", "hooks/../../x.yaml"])
def test_a_path_outside_the_config_directory_is_refused(tmp_path: Path, name: str):
    files = snapshot.files_of(make_config(tmp_path, restart_hook()))
    files[name] = restart_hook(name="evil")

    with pytest.raises(ConfigError, match="path outside the config directory"):
        snapshot.load_files(files, label="snapshot v5", version="5")


def test_the_digest_changes_with_any_path_or_text_and_only_then():
    files = {"a.yaml": "x", "hooks/b.yaml": "y"}
    assert snapshot.digest_of(files) == snapshot.digest_of(dict(reversed(files.items())))
    assert snapshot.digest_of(files) != snapshot.digest_of({"a.yaml": "x", "hooks/c.yaml": "y"})
    assert snapshot.digest_of(files) != snapshot.digest_of({"a.yaml": "xy", "hooks/b.yaml": ""})


def test_a_thousand_hooks_load_from_one_snapshot(tmp_path: Path):
    files = snapshot.files_of(make_config(tmp_path, restart_hook()))
    for i in range(1000):
        files[f"hooks/team-{i % 10}/hook-{i}.yaml"] = restart_hook(name=f"hook-{i}")

    config = snapshot.load_files(files, label="snapshot v6", version="6")

    assert len(config.hooks.hooks()) == 1001
