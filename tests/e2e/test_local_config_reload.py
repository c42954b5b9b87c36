"""``khook up`` applies an edit of config/ while it runs: an added hook fires without a
restart, and a broken edit is reported and changes nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.e2e.test_local_stack import (
    PROMPTS_DEADLINE_S,
    SAMPLES,
    free_block,
    khook,
    start_stack,
    stop_and_check_nothing_is_left,
)
from tests.support.configdir import make_config, restart_hook

__all__ = ["start_stack"]  # the fixture, used by name below

ADDED = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: live-added, namespace: default}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "LIVE-ADDED: pod {{.ResourceName}} restarted"
"""
BROKEN = ADDED.replace("live-added", "broken").replace("{{.ResourceName}}", "{{.Podname}}")


def wait_console(stack: Any, text: str) -> None:
    end = time.monotonic() + PROMPTS_DEADLINE_S
    while text not in stack.console():
        assert time.monotonic() < end, f"{text!r} not on the console:\n{stack.console()}"
        time.sleep(0.1)


def test_an_added_hook_fires_without_a_restart_and_a_broken_edit_keeps_it(
    tmp_path: Path, start_stack: Any
) -> None:
    config = make_config(tmp_path, restart_hook())  # a hook in namespace shop only
    stack = start_stack(
        "--bus",
        "memory",
        "--no-forwarder",
        "--sweep-every",
        "0",
        "--config",
        str(config),
        "--base-port",
        str(free_block()),  # clear of any other stack on this machine
    )
    info = stack.wait_ready()

    (config / "hooks" / "added.yaml").write_text(ADDED)
    wait_console(stack, "config reloaded: 2 hooks (+1 −0), 2 event configurations")
    (config / "hooks" / "broken.yaml").write_text(BROKEN)
    wait_console(stack, "kept the previous configuration")
    assert "broken.yaml" in stack.console()
    assert "{{.Podname}}" in stack.console()

    event = tmp_path / "event.jsonl"
    event.write_text((SAMPLES / "kubernetes" / "events.jsonl").read_text().splitlines()[0])
    end = time.monotonic() + PROMPTS_DEADLINE_S
    while not stack.prompts():  # the functions refresh within their interval
        assert time.monotonic() < end, stack.console()
        sent = khook(
            "send", "--state-dir", str(stack.state_dir), "--shift-to-now", "kubernetes", str(event)
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        time.sleep(0.5)
    [prompt] = stack.prompts()
    assert 'LIVE-ADDED: pod "web-7d9f8c6b5-x2x9q" restarted' in prompt["prompt"]
    stop_and_check_nothing_is_left(stack, info)
