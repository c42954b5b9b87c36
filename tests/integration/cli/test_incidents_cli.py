"""``khook replay`` shows the correlation decisions and ``khook incidents`` lists what they
opened, through the installed console script and a SQLite state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.configdir import make_config
from tests.support.incidents import CHECKOUT, PLUGINS, backoff, hooks
from tests.support.paths import REPO

KHOOK = str(Path(sys.executable).with_name("khook"))
NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


def khook(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KHOOK, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=dict(os.environ),
    )


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_replay_shows_correlation_and_incidents_lists_the_incident(tmp_path: Path):
    config = make_config(tmp_path, hooks(), plugins=PLUGINS)
    state = f"sqlite:{tmp_path / 'state.db'}"
    events = [
        backoff("checkout-7d9f8-x2x4q", 1, NOW - timedelta(minutes=3)),
        backoff("checkout-7d9f8-b7k2m", 1, NOW - timedelta(minutes=2)),
        backoff("cart-5c6b7d8f9-q8z9w", 1, NOW - timedelta(minutes=1)),
    ]
    replayed = khook(
        "replay",
        "--source",
        "kubernetes",
        "--config",
        str(config),
        "--state",
        state,
        "--now",
        NOW.isoformat(),
        stdin="\n".join(json.dumps(e) for e in events),
    )
    assert replayed.returncode == 0, replayed.stderr
    assert [o["decision"] for o in lines(replayed.stdout)] == [
        "opened:incident",
        "joined:incident",
        "opened:incident",
    ]

    listed = khook("incidents", "--state", state, "--json")
    only = khook("incidents", "--state", state, "--open", "--workload", CHECKOUT, "--json")
    table = khook("incidents", "--state", state)
    wrong = khook("incidents", "--state", state, "--workload", "checkout")

    assert listed.returncode == 0, listed.stderr
    assert sorted((i["workload"], i["events"], i["state"]) for i in lines(listed.stdout)) == [
        ("shop/Deployment/cart", 1, "open"),
        (CHECKOUT, 2, "open"),
    ]
    [checkout] = lines(only.stdout)
    assert checkout["hook"] == "shop/checkout"
    assert checkout["id"].startswith("inc-")
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["OPENED", "STATE", "WORKLOAD"]
    assert len(rows) == 2
    assert wrong.returncode == 2
    assert "NAMESPACE/KIND/NAME" in wrong.stderr
    audit = khook("firings", "--state", state, "--json")
    assert {f["incident"] for f in lines(audit.stdout)} == {i["id"] for i in lines(listed.stdout)}
