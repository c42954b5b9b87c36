"""``khook silence add|list|expire``, ``khook status`` and ``khook replay --at``, run as real
processes against one SQLite state file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.integration.cli.test_cli import khook
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event

NOW = "2026-01-05T10:35:00Z"
MATCHER = 'event.resource.namespace == "shop"'


def env_for(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KHOOK_STATE": f"sqlite:{tmp_path / 'state.db'}"}


def add(tmp_path: Path, *extra: str) -> str:
    done = khook(
        "silence",
        "add",
        "--matcher",
        MATCHER,
        "--for",
        "2h",
        "--comment",
        "db migration",
        "--author",
        "ana",
        "--now",
        NOW,
        *extra,
        env=env_for(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_misspelt_matcher_is_refused_naming_the_field_and_nothing_is_stored(tmp_path: Path):
    done = khook(
        "silence",
        "add",
        "--matcher",
        'event.resource.namespce == "shop"',
        "--for",
        "2h",
        env=env_for(tmp_path),
    )
    assert done.returncode == 2
    assert "--matcher" in done.stderr
    assert "event.resource.namespace" in done.stderr  # the field it likely meant
    assert not (tmp_path / "state.db").exists()  # refused before the store was opened


def test_add_list_expire_and_the_audit_trail(tmp_path: Path):
    silence_id = add(tmp_path)
    assert add(tmp_path) == f"{silence_id} (already there)"  # the same silence, asked again
    listed = khook("silence", "list", "--json", "--now", NOW, env=env_for(tmp_path))
    [shown] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (shown["id"], shown["matcher"], shown["author"], shown["comment"]) == (
        silence_id,
        MATCHER,
        "ana",
        "db migration",
    )
    assert (shown["starts_at"], shown["ends_at"], shown["active"]) == (
        "2026-01-05T10:35:00+00:00",
        "2026-01-05T12:35:00+00:00",
        True,
    )
    expired = khook(
        "silence",
        "expire",
        silence_id,
        "--author",
        "bo",
        "--now",
        "2026-01-05T11:00:00Z",
        env=env_for(tmp_path),
    )
    assert expired.returncode == 0, expired.stderr
    assert (
        khook(
            "silence", "list", "--now", "2026-01-05T11:00:00Z", env=env_for(tmp_path)
        ).stdout.strip()
        == "no silences in force or to come"
    )
    unknown = khook("silence", "expire", "nope", env=env_for(tmp_path))
    assert unknown.returncode == 1
    assert "no silence 'nope'" in unknown.stderr
    trail = khook("firings", "--json", env=env_for(tmp_path))
    records = [json.loads(line) for line in trail.stdout.splitlines()]
    assert [(r["outcome"], r["event_id"]) for r in records] == [
        ("silence:expired", silence_id),
        ("silence:created", silence_id),
    ]


def test_status_lists_the_active_silence_and_the_next_window(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    (config / "budgets.yaml").write_text(
        "maintenanceWindows:\n"
        "  - name: sunday-batch\n"
        '    schedule: "0 2 * * SUN"\n'
        "    timeZone: Europe/Berlin\n"
        "    duration: 2h\n"
        "    matcher: 'event.resource.namespace.startsWith(\"batch-\")'\n"
    )
    done = khook(
        "silence",
        "add",
        "--matcher",
        MATCHER,
        "--for",
        "1h",
        "--comment",
        "db migration",
        "--author",
        "ana",
        env=env_for(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    status = khook(
        "status",
        "--config",
        str(config),
        "--state-dir",
        str(tmp_path / "no-stack"),
        env=env_for(tmp_path),
    )
    assert status.returncode == 0, status.stderr
    [silence_line] = [line for line in status.stdout.splitlines() if line.startswith("silences")]
    assert done.stdout.strip() in silence_line
    assert "active" in silence_line
    assert "db migration" in silence_line
    [window_line] = [line for line in status.stdout.splitlines() if line.startswith("windows")]
    assert "sunday-batch next:" in window_line


def test_replay_at_a_time_in_the_silence_shows_suppressed_silenced(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    silence_id = add(tmp_path, "--hook", "shop/web", "--config", str(config))
    state = f"sqlite:{tmp_path / 'state.db'}"
    payload = json.dumps(core_event())

    def replay(at: str) -> dict[str, dict[str, Any]]:
        done = khook(
            "replay",
            "--source",
            "kubernetes",
            "--config",
            str(config),
            "--state",
            state,
            "--at",
            at,
            stdin=payload,
            env=env_for(tmp_path),
        )
        assert done.returncode == 0, done.stderr
        return {line["hook"]: line for line in map(json.loads, done.stdout.splitlines())}

    during = replay(NOW)
    assert during["shop/web"]["decision"] == "suppressed:silenced"
    assert silence_id in during["shop/web"]["detail"]
    assert during["shop/audit"]["decision"] == "dispatched"


def test_a_hook_the_configuration_does_not_load_is_refused(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    done = khook(
        "silence",
        "add",
        "--hook",
        "shop/wbe",
        "--for",
        "1h",
        "--config",
        str(config),
        env=env_for(tmp_path),
    )
    assert done.returncode == 2
    assert "--hook shop/wbe: no such hook (loaded: shop/audit, shop/web)" in done.stderr
