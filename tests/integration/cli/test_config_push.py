"""``khook config push`` and ``khook config show`` against a real SQLite state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from khook_core.cli.main import main
from khook_core.state.config_sqlite import SqliteConfigStore
from tests.support.configdir import make_config, restart_hook


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:{tmp_path / 'state.db'}"


def version_in(state: str) -> int:
    store = SqliteConfigStore(state.removeprefix("sqlite:"))
    try:
        return store.config_version()
    finally:
        store.close()


def test_an_invalid_config_exits_1_with_its_problems_and_publishes_nothing(tmp_path, state, capsys):
    config = make_config(tmp_path, restart_hook(prompt="Pod {{.Podname}} restarted"))

    assert main(["config", "push", "--config", str(config), "--state", state]) == 1

    err = capsys.readouterr().err
    assert f"{config}/hooks/hooks.yaml" in err
    assert "{{.Podname}}" in err
    assert version_in(state) == 0
    assert main(["config", "show", "--state", state]) == 1
    assert "no configuration published yet" in capsys.readouterr().err


def test_a_valid_config_is_published_once_and_shown(tmp_path, state, capsys):
    config = make_config(tmp_path, restart_hook())

    assert main(["config", "push", "--config", str(config), "--state", state]) == 0
    assert "published version 1: 1 hooks, 1 event configurations" in capsys.readouterr().out
    assert main(["config", "push", "--config", str(config), "--state", state]) == 0
    assert "unchanged, still version 1" in capsys.readouterr().out

    (config / "hooks" / "more.yaml").write_text(restart_hook(name="api"))
    assert main(["config", "push", "--config", str(config), "--state", state]) == 0
    assert "published version 2: 2 hooks" in capsys.readouterr().out

    assert main(["config", "show", "--state", state]) == 0
    out = capsys.readouterr().out
    assert "version 2 from push" in out
    assert "2 hooks in 4 files" in out
