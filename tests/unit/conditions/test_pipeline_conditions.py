"""The pipeline with hook conditions: a failed condition is a decision, never an exception."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event
from tests.support.paths import REPO

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
WEB_RESTART = '    prompt: "Pod {{.ResourceName}} restarted: {{.Reason}}"'


def with_when(when: str) -> str:
    """SHOP_HOOK with ``when`` on shop/web's pod-restart configuration (shop/audit has none)."""
    return SHOP_HOOK.replace(WEB_RESTART, f"    when: {json.dumps(when)}\n{WEB_RESTART}")


def runtime(config: Path) -> Runtime:
    return Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
    )


def decide(tmp_path: Path, when: str, **event: object) -> list[tuple[str, str | None, str]]:
    rt = runtime(make_config(tmp_path, with_when(when)))
    try:
        decisions = run_pipeline("kubernetes", core_event(**event), {}, runtime=rt)  # type: ignore[arg-type]
    finally:
        rt.close()
    return [(d.decision, d.hook, d.detail) for d in decisions]


def test_a_true_condition_fires_and_a_false_one_does_not(tmp_path: Path):
    assert decide(tmp_path, "event.count >= 3", count=3) == [
        ("dispatched", "shop/web", "dry-run"),
        ("dispatched", "shop/audit", "dry-run"),
    ]
    assert decide(tmp_path, "event.count >= 3", count=2) == [
        ("dispatched", "shop/audit", "dry-run"),
    ]


def test_a_condition_over_mapped_tags_sees_the_mapping_row(tmp_path: Path):
    # event-mappings.yaml tags pod-restart with category: reliability (and impact).
    decisions = decide(tmp_path, "event.tags.category == 'reliability'")
    assert [d[:2] for d in decisions] == [("dispatched", "shop/web"), ("dispatched", "shop/audit")]


def test_a_condition_error_is_a_dropped_decision_with_the_message(tmp_path: Path):
    decisions = decide(tmp_path, "event.tags.team == 'web'")
    assert decisions == [
        ("dropped:condition-error", "shop/web", "no such key: 'team'"),
        ("dispatched", "shop/audit", "dry-run"),
    ]


def test_a_condition_error_on_the_only_hook_is_counted_with_the_decisions(tmp_path: Path):
    hooks = with_when("event.count / (event.count - event.count) > 1")
    config = make_config(tmp_path, hooks.split("---")[0])
    rt = runtime(config)
    try:
        counts = Counter(
            d.decision
            for i in range(3)
            for d in run_pipeline("kubernetes", core_event(name=f"web-{i}"), {}, runtime=rt)
        )
    finally:
        rt.close()
    assert counts == {"dropped:condition-error": 3}


def khook(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "khook_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_replay_shows_per_hook_whether_the_condition_matched_and_what_it_saw(tmp_path: Path):
    config = make_config(tmp_path, with_when("event.count >= 3 && event.resource.kind == 'Pod'"))
    payloads = "\n".join(json.dumps(core_event(name=f"web-{n}", count=n)) for n in (5, 1))
    result = khook(
        "replay",
        "--source",
        "kubernetes",
        "--config",
        str(config),
        "--now",
        "2026-01-05T10:35:00Z",
        stdin=payloads,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    when = "event.count >= 3 && event.resource.kind == 'Pod'"

    def shown(count: int, matched: bool) -> list[dict[str, object]]:
        return [
            {
                "hook": "shop/web",
                "event_type": "pod-restart",
                "when": when,
                "matched": matched,
                "values": {"event.count": count, "event.resource.kind": "Pod"},
            }
        ]

    assert [
        (line["input"], line["hook"], line["decision"], line["conditions"]) for line in lines
    ] == [
        (0, "shop/web", "dispatched", shown(5, True)),
        (0, "shop/audit", "dispatched", shown(5, True)),
        # shop/web's condition said no; its answer shows beside the hook that fired.
        (1, "shop/audit", "dispatched", shown(1, False)),
    ]


def test_replay_shows_a_condition_error_with_its_message(tmp_path: Path):
    config = make_config(tmp_path, with_when("event.tags.team == 'web'"))
    result = khook(
        "replay",
        "--source",
        "kubernetes",
        "--config",
        str(config),
        "--now",
        "2026-01-05T10:35:00Z",
        stdin=json.dumps(core_event()),
    )
    first = json.loads(result.stdout.splitlines()[0])
    assert first["decision"] == "dropped:condition-error"
    assert first["detail"] == "no such key: 'team'"
    assert first["conditions"][0]["matched"] is None
    assert first["conditions"][0]["error"] == "no such key: 'team'"
    assert first["conditions"][0]["values"]["event.tags"]["category"] == "reliability"
    assert "1 dropped:condition-error" in result.stderr


def test_validate_reports_a_bad_condition_at_its_line(tmp_path: Path):
    config = make_config(tmp_path, with_when("event.severty == 'error'"))
    result = khook("validate", "--config", str(config))
    assert result.returncode != 0
    assert (
        f"{config / 'hooks' / 'hooks.yaml'}:8: hook shop/web: "
        "spec.eventConfigurations[0].when: unknown field event.severty "
        "(did you mean event.severity?) at column 6"
    ) in result.stdout + result.stderr
