"""What ``khook up`` shows of the function logs: decisions and problems, not the noise."""

from __future__ import annotations

import io
import json
from pathlib import Path

from khook_local.console import Console, LogFollower, summarize


def test_decisions_and_warnings_are_shown_and_the_rest_is_not():
    decision = {
        "severity": "INFO",
        "logger": "khook_core.transport.pubsub",
        "message": "kafka message 3: dispatched (data/streaming)",
    }
    chatter = {"severity": "INFO", "logger": "khook_core.runtime", "message": "loaded config"}
    warning = {
        "severity": "WARNING",
        "logger": "khook_core.pipeline",
        "message": "circuit open for kagent/kafka-agent\nsecond line",
    }
    crash = {
        "severity": "ERROR",
        "logger": "handle",
        "message": "Exception on / [POST]",
        "exception": "Traceback (most recent call last):\n...\nTransientError: retry",
    }

    assert summarize(decision) == "kafka message 3: dispatched (data/streaming)"
    assert summarize(chatter) is None
    assert summarize(warning) == "WARNING: circuit open for kagent/kafka-agent"
    assert summarize(crash, "x.log") == (
        "answered HTTP 500 (TransientError: retry); traceback in x.log"
    )


def test_sweep_runs_are_shown_and_idle_ticks_are_not():
    def tick(message: str) -> dict[str, str]:
        return {"severity": "INFO", "logger": "khook_core.transport.tick", "message": message}

    ran = "sweep coalesce|shop/web|pod-restart|shop/web: dispatched (shop/web)"
    assert summarize(tick(ran)) == ran
    assert summarize(tick("sweep tick 7: 1 dispatched")) == "sweep tick 7: 1 dispatched"
    assert summarize(tick("sweep tick 8: nothing held")) is None


def test_the_follower_prints_only_new_complete_lines(tmp_path: Path):
    log = tmp_path / "function-kafka.log"
    log.write_text('{"severity": "WARNING", "logger": "x", "message": "before start"}\n')
    out = io.StringIO()
    follower = LogFollower(Console(out), {"kafka": log})
    with log.open("a") as handle:
        handle.write("gunicorn says hello\n")
        handle.write(
            json.dumps(
                {
                    "severity": "INFO",
                    "logger": "khook_core.transport.pubsub",
                    "message": "kafka message 1: duplicate (data/streaming)",
                }
            )
            + "\n"
        )
        handle.write('{"severity": "WARNING", "message": "half a li')

    follower.poll()

    assert out.getvalue() == "  kafka        message 1: duplicate (data/streaming)\n"
