"""A silence added while ``khook up`` runs: the next matching event is suppressed within the
functions' refresh interval, a non-matching one still fires, and ``expire`` restores firing."""

from __future__ import annotations

import json
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

DEFAULT_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: web, namespace: default}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "DEFAULT: pod {{.ResourceName}} restarted"
"""
DISK_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: disks, namespace: monitoring}
spec:
  sources: [alertmanager]
  eventConfigurations:
  - eventType: disk-full
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: "DISK: {{.ResourceName}} is almost full"
"""
MATCHER = 'event.resource.namespace == "default" || event.source == "alertmanager"'


def pod_event(tmp_path: Path, namespace: str, name: str) -> Path:
    """The sample pod restart, moved to ``namespace`` and renamed (a firing of its own)."""
    event: dict[str, Any] = json.loads(
        (SAMPLES / "kubernetes" / "events.jsonl").read_text().splitlines()[0]
    )
    event["metadata"] |= {"namespace": namespace, "name": f"{name}.1", "uid": f"{name}-uid"}
    event["involvedObject"] |= {"namespace": namespace, "name": name, "uid": f"{name}-pod"}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(event))
    return path


def send(stack: Any, path: Path) -> None:
    sent = khook(
        "send", "--state-dir", str(stack.state_dir), "--shift-to-now", "kubernetes", str(path)
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr


def outcomes(stack: Any, resource_name: str) -> list[str]:
    """The audit trail's outcomes for the pod ``resource_name``, oldest first."""
    listed = khook("firings", "--state", state_url(stack), "--json", "--limit", "500")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    return [r["outcome"] for r in reversed(rows) if r["resource"].endswith(f"/{resource_name}")]


def hook_outcomes(stack: Any, hook: str) -> list[str]:
    listed = khook("firings", "--state", state_url(stack), "--json", "--hook", hook)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return [json.loads(line)["outcome"] for line in listed.stdout.splitlines() if line.strip()]


def state_url(stack: Any) -> str:
    return f"sqlite:{stack.state_dir / 'state.db'}"


def until(check: Any, what: str, stack: Any) -> None:
    end = time.monotonic() + PROMPTS_DEADLINE_S
    while not check():
        assert time.monotonic() < end, f"{what}:\n{stack.console()}"
        time.sleep(0.3)


def test_a_silence_added_while_the_stack_runs_suppresses_then_expire_restores_firing(
    tmp_path: Path, start_stack: Any
) -> None:
    config = make_config(tmp_path, restart_hook() + "---\n" + DEFAULT_HOOK + "---\n" + DISK_HOOK)
    stack = start_stack(
        "--bus",
        "memory",
        "--no-forwarder",
        "--sweep-every",
        "0",
        "--config",
        str(config),
        "--base-port",
        str(free_block()),
    )
    info = stack.wait_ready()
    send(stack, pod_event(tmp_path, "default", "before"))  # the functions have read: none
    until(lambda: outcomes(stack, "before") == ["dispatched"], "no firing before", stack)

    added = khook(
        "silence",
        "add",
        "--state",
        state_url(stack),
        "--matcher",
        MATCHER,
        "--for",
        "1h",
        "--comment",
        "db migration",
        "--author",
        "ana",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    silence_id = added.stdout.strip()

    # Within the refresh interval, the next matching event is suppressed (earlier ones may
    # still fire: the functions read silences once an interval, not once an event).
    n = 0

    def next_is_silenced() -> bool:
        nonlocal n
        n += 1
        send(stack, pod_event(tmp_path, "default", f"during-{n}"))
        return outcomes(stack, f"during-{n}") == ["suppressed:silenced"]

    until(next_is_silenced, "no matching event suppressed", stack)

    # Every function honours it: the Alertmanager function's first request reads it too.
    def alert_is_silenced() -> bool:
        sent = khook(
            "send",
            "--state-dir",
            str(stack.state_dir),
            "--shift-to-now",
            "alertmanager",
            str(SAMPLES / "alertmanager" / "disk-full.json"),
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        return "suppressed:silenced" in hook_outcomes(stack, "monitoring/disks")

    until(alert_is_silenced, "the alert was not suppressed", stack)
    assert "dispatched" not in hook_outcomes(stack, "monitoring/disks")
    send(stack, pod_event(tmp_path, "shop", "shop-pod"))  # not matched: fires
    until(lambda: outcomes(stack, "shop-pod") == ["dispatched"], "shop event not fired", stack)
    assert not any(f'"during-{n}"' in p["prompt"] for p in stack.prompts())

    listed = khook("silence", "list", "--state", state_url(stack), "--json")
    [shown] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (shown["id"], shown["author"], shown["active"]) == (silence_id, "ana", True)

    expired = khook("silence", "expire", silence_id, "--state", state_url(stack))
    assert expired.returncode == 0, expired.stdout + expired.stderr

    def same_event_fires_again() -> bool:
        send(stack, pod_event(tmp_path, "default", f"during-{n}"))  # the silenced one
        return outcomes(stack, f"during-{n}")[-1] == "dispatched"

    until(same_event_fires_again, "the silenced event did not fire after expire", stack)
    trail = khook("firings", "--state", state_url(stack), "--json", "--limit", "500")
    kinds = [json.loads(line)["outcome"] for line in trail.stdout.splitlines()]
    assert "silence:created" in kinds
    assert "silence:expired" in kinds
    stop_and_check_nothing_is_left(stack, info)
