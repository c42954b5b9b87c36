"""The kubernetes function (real functions-framework app) reloading the live configuration
from the Firestore emulator: a new hook fires without a redeploy, a refused snapshot and an
unreachable store keep the last good configuration, and every firing records its version.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from khook_core.errors import TransientError
from khook_core.liveconfig import publishing, reload, snapshot
from khook_core.runtime import get_runtime
from khook_core.settings import FIRESTORE_EMULATOR_PROJECT
from khook_core.state import open_config_store
from khook_core.state.base import ConfigSnapshot, ConfigStore, Firing
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_api import FakeKubeApi

REFRESH_S = "0.05"
WAIT_S = 60.0
"""How long a test waits for a reload before failing (never a timed assertion: the refresh
interval is 50 ms; this only bounds a broken build)."""
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
PROJECT = FIRESTORE_EMULATOR_PROJECT  # what a function opens under the emulator


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return make_config(tmp_path, restart_hook(name="web"))


@pytest.fixture
def client(
    config_dir: Path,
    firestore_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    function_client: Callable[[str], Any],
) -> Any:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    firestore_emulator.reset(PROJECT)  # the function's project, emptied
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("KHOOK_STATE", "firestore")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    monkeypatch.setenv("KHOOK_CONFIG_REFRESH", REFRESH_S)
    return function_client("kubernetes")


@pytest.fixture
def config_store(client: Any) -> Iterator[ConfigStore]:
    store = open_config_store("firestore", project=PROJECT)
    yield store
    store.close()


_sent = iter(range(1_000_000))


def deliver(client: Any, pod: str = "web-0") -> None:
    """One forwarder message: a fresh restart of ``pod`` in namespace shop."""
    n = next(_sent)
    event = FakeKubeApi().create(namespace="shop", name=f"{pod}.{n}", object_name=pod)
    body = {
        "message": {
            "data": base64.b64encode(json.dumps(event).encode()).decode(),
            "messageId": f"m-{n}",
            "attributes": {"khook.source": "kubernetes", "khook.namespace": "shop"},
        },
        "subscription": "projects/p1/subscriptions/khook-kubernetes-push",
    }
    reply = client.post("/projects/p1/topics/khook-kubernetes", json=body)
    assert reply.status_code == 200, reply.data


def firings() -> list[Firing]:
    return get_runtime().store.firings(limit=1000)


def deliver_until(client: Any, done: Callable[[], bool], pod: str = "web-0") -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, "the function never picked up the change"
        deliver(client, pod)
        time.sleep(0.02)


def push_hooks(store: ConfigStore, config_dir: Path, hooks: str) -> int:
    (config_dir / "hooks" / "hooks.yaml").write_text(hooks)
    published = publishing.publish_files(
        snapshot.files_of(config_dir), store, origin="push", label="config", now=NOW
    )
    return published.version


def test_the_first_event_bootstraps_the_deployed_files_as_version_one(client, config_store):
    deliver(client)

    current = config_store.read_config()
    assert current is not None
    assert (current.version, current.origin, current.hooks) == (1, "files", 1)
    [firing] = firings()
    assert (firing.hook, firing.config_version) == ("shop/web", "1")


def test_a_pushed_hook_fires_without_a_redeploy_and_a_deleted_one_stops(
    client, config_store, config_dir
):
    deliver(client)  # bootstraps version 1
    version = push_hooks(config_store, config_dir, restart_hook(name="api"))
    assert version == 2

    deliver_until(client, lambda: any(f.hook == "shop/api" for f in firings()), pod="api-0")

    fired = [f for f in firings() if f.hook == "shop/api"]
    assert {f.config_version for f in fired} == {"2"}
    before = len([f for f in firings() if f.hook == "shop/web"])
    deliver(client, pod="web-9")  # the hook "web" is gone from version 2
    assert len([f for f in firings() if f.hook == "shop/web"]) == before


def test_a_snapshot_the_function_cannot_load_is_refused_and_the_old_one_kept(
    client, config_store, config_dir, caplog
):
    deliver(client)
    files = snapshot.files_of(config_dir)
    files["hooks/hooks.yaml"] = files["hooks/hooks.yaml"].replace(
        "  eventConfigurations:", "  futureField: true\n  eventConfigurations:"
    )
    # As a newer khook would publish it: this version's loader does not know the field.
    config_store.publish_config(files=files, origin="push", hooks=1, digest="x", now=NOW)

    with caplog.at_level(logging.ERROR, logger="khook_core.liveconfig.reload"):
        deliver_until(client, lambda: "version 2 (push) refused" in caplog.text)
    assert "snapshot v2/hooks/hooks.yaml" in caplog.text
    assert "futureField" in caplog.text

    deliver(client, pod="web-1")
    assert {f.config_version for f in firings()} == {"1"}


class SwitchableStore:
    """The real config store behind a switch that makes it unreachable (a TransientError, as
    every backend raises when its connection fails)."""

    def __init__(self, store: ConfigStore) -> None:
        self.store, self.down = store, False

    def _check(self) -> None:
        if self.down:
            raise TransientError("Firestore config version current: ServiceUnavailable")

    def config_version(self) -> int:
        self._check()
        return self.store.config_version()

    def read_config(self) -> ConfigSnapshot | None:
        self._check()
        return self.store.read_config()

    def publish_config(self, **kwargs: Any) -> int | None:
        self._check()
        return self.store.publish_config(**kwargs)

    def close(self) -> None:
        self.store.close()


def test_the_store_down_during_a_change_keeps_the_last_good_configuration_until_it_is_back(
    client, config_store, config_dir, caplog
):
    deliver(client)  # the function's runtime, bootstrapped to version 1
    switch = SwitchableStore(open_config_store("firestore", project=PROJECT))
    reloader = reload.Reloader(get_runtime(), source="kubernetes", interval=0.0, store=switch)
    reload._reloader = reloader  # this process's reloader now reads through the switch
    reloader.current()

    switch.down = True
    push_hooks(config_store, config_dir, restart_hook(name="api"))
    with caplog.at_level(logging.WARNING, logger="khook_core.liveconfig.reload"):
        deliver(client, pod="web-2")
        deliver(client, pod="api-2")
    assert "configuration store unreachable; keeping configuration 1" in caplog.text
    assert {f.hook for f in firings()} == {"shop/web"}

    switch.down = False
    deliver(client, pod="api-3")
    assert [f.config_version for f in firings() if f.hook == "shop/api"] == ["2"]
