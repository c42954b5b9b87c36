"""Maintenance windows from budgets.yaml: recurring, in a time zone, across daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import ConfigError
from khook_core.pipeline import run_pipeline, sweep
from khook_core.runtime import Clock, Runtime, load_config
from khook_core.settings import Settings
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event

WINDOW = """\
maintenanceWindows:
  - name: sunday-batch
    schedule: "{schedule}"
    timeZone: Europe/Berlin
    duration: 2h
    matcher: 'event.source == "kubernetes" && event.resource.namespace.startsWith("shop")'
    hooks: [shop/web]
"""
CRON = "0 2 * * SUN"
RRULE = "RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0"


def runtime_with(tmp_path: Path, budgets: str, clock: Clock) -> Runtime:
    config = make_config(tmp_path, SHOP_HOOK)
    (config / "budgets.yaml").write_text(budgets)
    return Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=clock,
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def event_at(instant: str, **fields: str) -> dict[str, object]:
    """A pod restart that happened at ``instant`` (fresh for a clock set there)."""
    stamp = at(instant).strftime("%Y-%m-%dT%H:%M:%SZ")
    return core_event(first=stamp, last=stamp, created=stamp, **fields)  # type: ignore[arg-type]


# (instant, silenced?) in Berlin wall-clock time. Winter is UTC+1, summer UTC+2: the same
# wall-clock window is a different UTC span on each side of a change.
WEEKS = [
    ("2026-03-22T01:59:59+01:00", False),  # the last winter Sunday: opens at 02:00 CET
    ("2026-03-22T02:00:00+01:00", True),
    ("2026-03-22T03:59:59+01:00", True),
    ("2026-03-22T04:00:00+01:00", False),
    ("2026-04-05T01:59:59+02:00", False),  # the first full summer Sunday: 02:00 CEST
    ("2026-04-05T02:00:00+02:00", True),
    ("2026-04-05T03:59:59+02:00", True),
    ("2026-04-05T04:00:00+02:00", False),
    ("2026-10-25T01:59:59+02:00", False),  # the night the clocks go back (03:00 CEST -> 02:00)
    ("2026-10-25T02:00:00+02:00", True),  # the first 02:00
    ("2026-10-25T02:30:00+01:00", True),  # the repeated hour
    ("2026-10-25T03:59:59+01:00", True),
    ("2026-10-25T04:00:00+01:00", False),
    ("2026-11-01T01:59:59+01:00", False),  # back in winter time
    ("2026-11-01T02:00:00+01:00", True),
    ("2026-11-01T04:00:00+01:00", False),
    ("2026-11-04T02:30:00+01:00", False),  # a Wednesday
]


@pytest.mark.parametrize("schedule", [CRON, RRULE], ids=["cron", "rrule"])
def test_a_weekly_window_opens_and_closes_at_wall_clock_times_across_dst(
    tmp_path: Path, schedule: str
):
    clock = Clock(at(WEEKS[0][0]))
    runtime = runtime_with(tmp_path, WINDOW.format(schedule=schedule), clock)
    seen = []
    for n, (instant, _) in enumerate(WEEKS):
        clock.fixed = at(instant)
        found = run_pipeline(
            "kubernetes", event_at(instant, name=f"web-{n}", uid=f"u{n}"), {}, runtime=runtime
        )
        by_hook = {d.hook: d.decision for d in found}
        assert by_hook["shop/audit"] == "dispatched"  # the window names only shop/web
        seen.append((instant, by_hook["shop/web"] == "suppressed:silenced"))
    runtime.close()
    assert seen == WEEKS


def test_on_the_night_the_clocks_skip_two_oclock_the_window_opens_after_the_gap(
    tmp_path: Path,
):
    clock = Clock(at("2026-03-29T01:59:00+01:00"))
    runtime = runtime_with(tmp_path, WINDOW.format(schedule=CRON), clock)
    decisions = []
    for n, instant in enumerate(["2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00"]):
        clock.fixed = at(instant)
        found = run_pipeline(
            "kubernetes", event_at(instant, name=f"w{n}", uid=f"g{n}"), {}, runtime=runtime
        )
        decisions.append({d.hook: d.decision for d in found}["shop/web"])
    runtime.close()
    assert decisions == ["dispatched", "suppressed:silenced"]


def test_a_window_names_itself_and_its_end_in_the_decision(tmp_path: Path):
    clock = Clock(at("2026-04-05T02:30:00+02:00"))
    runtime = runtime_with(tmp_path, WINDOW.format(schedule=CRON), clock)
    found = run_pipeline("kubernetes", event_at("2026-04-05T02:30:00+02:00"), {}, runtime=runtime)
    runtime.close()
    web = next(d for d in found if d.hook == "shop/web")
    assert web.detail == "maintenance window sunday-batch until 2026-04-05T02:00:00+00:00"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("matcher", "'event.resource.namespce == \"x\"'", "event.resource.namespace"),
        ("timeZone", "Europe/Berlim", "unknown time zone"),
        ("schedule", '"0 25 * * *"', "schedule"),
    ],
)
def test_a_bad_window_is_refused_at_load_naming_the_field(
    tmp_path: Path, field: str, value: str, message: str
):
    config = make_config(tmp_path, SHOP_HOOK)
    lines = {
        "name": "w",
        "schedule": f'"{CRON}"',
        "timeZone": "UTC",
        "duration": "1h",
        "matcher": "'true'",
    } | {field: value}
    body = "maintenanceWindows:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in lines.items())
    (config / "budgets.yaml").write_text(body + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = str(caught.value)
    assert f"maintenanceWindows[0].{field}" in text
    assert message in text


def test_when_a_window_closes_what_it_held_is_one_run_per_hook(tmp_path: Path):
    budgets = WINDOW.format(schedule=CRON).replace("    hooks: [shop/web]\n", "")
    clock = Clock(at("2026-04-05T02:10:00+02:00"))
    runtime = runtime_with(tmp_path, budgets, clock)
    for n in range(3):
        stamp = f"2026-04-05T02:1{n}:00+02:00"
        clock.fixed = at(stamp)
        found = run_pipeline(
            "kubernetes", event_at(stamp, name=f"web-{n}", uid=f"u{n}"), {}, runtime=runtime
        )
        assert {d.decision for d in found} == {"suppressed:silenced"}
    clock.fixed = at("2026-04-05T03:59:00+02:00")
    assert sweep(runtime=runtime) == []  # the window is still open
    clock.fixed = at("2026-04-05T04:01:00+02:00")
    runs = sweep(runtime=runtime)
    assert sorted((d.decision, d.hook) for d in runs) == [
        ("dispatched", "shop/audit"),
        ("dispatched", "shop/web"),
    ]
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, DryRunDispatcher)
    assert all(
        "3 event(s) held back by maintenance window sunday-batch" in r.prompt
        for r in dispatcher.requests
    )
    runtime.close()
