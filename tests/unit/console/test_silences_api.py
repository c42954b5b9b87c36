"""``/api/v1/silences``: the silences in force and the windows' next occurrences, as JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from khook_core.console import api
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.runtime import Clock, Runtime
from khook_core.settings import ConsoleSettings, Settings
from khook_core.silencing.gate import SilenceGate
from khook_core.state.base import SilenceRecord
from khook_core.state.memory import MemoryStateStore
from khook_core.state.silence_memory import MemorySilenceStore
from tests.support.configdir import SHOP_HOOK, make_config

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def test_silences_and_the_next_window_are_listed(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    (config / "budgets.yaml").write_text(
        "maintenanceWindows:\n"
        "  - {name: sunday-batch, schedule: '0 2 * * SUN', timeZone: Europe/Berlin, "
        "duration: 2h}\n"
    )
    runtime = Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )
    store = MemorySilenceStore()
    runtime.silences = SilenceGate(lambda: store, interval=0)
    for id, start, hours in (("now", -1, 2), ("later", 1, 1), ("over", -5, 1)):
        store.add_silence(
            silence=SilenceRecord(
                id=id,
                matcher="true",
                author="ana",
                comment="db migration",
                starts_at=NOW + timedelta(hours=start),
                ends_at=NOW + timedelta(hours=start + hours),
                created_at=NOW,
                hook="shop/web" if id == "now" else "",
            )
        )
    answer = api.silences({}, runtime, ConsoleSettings())
    assert [(s["id"], s["state"], s["hook"]) for s in answer["silences"]] == [
        ("later", "pending", None),
        ("now", "active", "shop/web"),
    ]
    assert answer["silences"][1]["ends_at"] == "2026-03-25T13:00:00Z"
    # The next Sunday is the one the clocks go forward: 03:00 CEST, 01:00 UTC.
    assert answer["windows"] == [
        {
            "name": "sunday-batch",
            "start": "2026-03-29T01:00:00Z",
            "end": "2026-03-29T03:00:00Z",
            "open": False,
        }
    ]
    everything = api.silences({"all": "1"}, runtime, ConsoleSettings())
    assert [s["id"] for s in everything["silences"]] == ["later", "now", "over"]
    runtime.close()
