"""Store records as the API's JSON: a hook's status follows its agent's circuit."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from khook_core.console import views
from khook_core.runtime import load_config
from khook_core.state.memory import MemoryStateStore
from khook_core.storm import keys
from tests.support.configdir import SHOP_HOOK, make_config

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_a_hook_is_open_while_its_agents_circuit_is_and_active_again_after(tmp_path: Path):
    config = load_config(make_config(tmp_path, SHOP_HOOK))
    store = MemoryStateStore()
    [web] = [r for r in config.hooks.rules if r.hook == "shop/web"][:1]
    for _ in range(2):
        store.record_failure(
            key=keys.circuit(web), threshold=2, cool_down=timedelta(minutes=2), now=NOW
        )

    def at(now: datetime) -> dict[str, str]:
        entries = views.hooks(config.hooks.rules, lambda key: store.circuit_state(key=key, now=now))
        return {h["name"]: h["status"] for h in entries}

    assert at(NOW) == {"shop/audit": "active", "shop/web": "open"}
    assert at(NOW + timedelta(minutes=3)) == {"shop/audit": "active", "shop/web": "half-open"}
    store.record_success(key=keys.circuit(web))
    assert at(NOW) == {"shop/audit": "active", "shop/web": "active"}
    version = hashlib.sha256((tmp_path / "config" / "hooks" / "hooks.yaml").read_bytes())
    entries = views.hooks(config.hooks.rules, lambda key: "closed")
    assert {h["config_version"] for h in entries} == {version.hexdigest()[:12]}
    assert entries[1]["event_types"] == ["pod-restart", "probe-failed"]
