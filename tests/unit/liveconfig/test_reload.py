"""The reloader's decisions on the in-memory ConfigStore (the reference implementation)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.liveconfig import reload, snapshot
from khook_core.runtime import Runtime
from khook_core.settings import Settings
from khook_core.state.config_memory import MemoryConfigStore
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config, restart_hook

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return make_config(tmp_path, restart_hook(name="web"))


@pytest.fixture
def base(config_dir: Path) -> Runtime:
    settings = Settings(config_dir=config_dir, state="memory", dispatch="dry-run")
    return Runtime.build(settings, store=MemoryStateStore(), dispatcher=DryRunDispatcher())


def publish(store: MemoryConfigStore, config_dir: Path, **replace: str) -> int | None:
    files = {**snapshot.files_of(config_dir), **replace}
    return store.publish_config(
        files=files, origin="push", hooks=0, digest=snapshot.digest_of(files), now=NOW
    )


def test_a_wiped_store_is_bootstrapped_again_with_the_deployed_configuration(
    base: Runtime, config_dir: Path
):
    store = MemoryConfigStore()
    reloader = reload.Reloader(base, source="kubernetes", interval=0.0, store=store)
    assert reloader.current() is base
    assert (store.config_version(), base.config.version) == (1, "1")
    publish(store, config_dir, **{"hooks/more.yaml": restart_hook(name="api")})
    assert reloader.current().config.hooks.hooks() == ["shop/api", "shop/web"]

    reloader._store = MemoryConfigStore()  # the store emptied (a new database)

    live = reloader.current()
    assert live is base
    assert live.config.hooks.hooks() == ["shop/web"]
    assert live.config.version == "1"


def test_a_refused_version_is_logged_once_and_the_next_one_loads(
    base: Runtime, config_dir: Path, caplog: pytest.LogCaptureFixture
):
    store = MemoryConfigStore()
    reloader = reload.Reloader(base, source="kubernetes", interval=0.0, store=store)
    reloader.current()
    # The function's own source switched off: it could not serve a single event.
    publish(
        store, config_dir, **{"plugins.yaml": "plugins:\n- {name: kubernetes, enabled: false}\n"}
    )

    with caplog.at_level(logging.ERROR, logger="khook_core.liveconfig.reload"):
        for _ in range(3):
            assert reloader.current() is base
    assert caplog.text.count("configuration version 2 (push) refused") == 1

    publish(store, config_dir, **{"hooks/more.yaml": restart_hook(name="api")})
    assert reloader.current().config.version == "3"


def test_a_snapshot_of_the_deployed_files_is_adopted_without_loading_them_again(
    base: Runtime, config_dir: Path
):
    store = MemoryConfigStore()
    publish(store, config_dir)  # another instance bootstrapped the same files
    reloader = reload.Reloader(base, source="kubernetes", interval=0.0, store=store)

    live = reloader.current()

    assert live is base  # the configuration loaded at start, not a second load of the files
    assert (reloader.version, live.config.version) == (1, "1")
    publish(store, config_dir, **{"hooks/more.yaml": restart_hook(name="api")})
    assert reloader.current().config.hooks.hooks() == ["shop/api", "shop/web"]
    publish(store, config_dir)  # back to the deployed files
    assert reloader.current() is base
    assert reloader.version == 3
