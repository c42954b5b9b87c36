"""``khook up`` and ``khook send`` as a user runs them: the whole system on one machine.

The stack runs as a subprocess with its own state directory; one event per source goes in
through ``khook send`` (plus a GitHub delivery to the HMAC-only ``/github`` endpoint); the demo
agent must receive each rendered prompt; SIGINT must stop it all, leaving no process behind.
Once with the Pub/Sub emulator (skipped locally when it is not installed, a failure with
``CI=true``), once with the in-process bus, and once with a test API server as the kubeconfig
cluster, so the forwarder runs too.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from khook_core.runtime import load_config
from khook_local import stackfile
from khook_local.emulator import find_launcher
from khook_local.ports import BLOCK_SIZE, is_free
from khook_local.processes import group_alive, stop_group
from khook_local.stackfile import StackInfo
from tests.support.kube_api import FakeKubeApi
from tests.support.paths import REPO
from tests.support.pubsub import unavailable

SAMPLES = REPO / "config" / "samples"
ONE_EVENT = {
    "alertmanager": SAMPLES / "alertmanager" / "disk-full.json",
    "webhook": SAMPLES / "webhook" / "generic-deployment-failed.json",
    "kafka": SAMPLES / "kafka" / "consumer-lag.json",
    "cdc": SAMPLES / "cdc" / "debezium-update-with-schema.json",
    "gcp": SAMPLES / "gcp" / "monitoring-incident-k8s-container-open.json",
}
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{url}"}}
contexts:
- name: test-cluster
  context: {{cluster: test, user: tester}}
current-context: test-cluster
users:
- name: tester
  user: {{token: not-checked}}
"""
READY_DEADLINE_S = 60.0
PROMPTS_DEADLINE_S = 30.0
STOP_DEADLINE_S = 30.0


@dataclass
class RunningStack:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    output: Path

    def console(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self) -> StackInfo:
        end = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"khook up exited:\n{self.console()}"
            info = stackfile.read(self.state_dir)
            if info is not None and info.ready and info.pid == self.proc.pid:
                return info
            time.sleep(0.1)
        raise AssertionError(f"not ready in {READY_DEADLINE_S} s:\n{self.console()}")

    def prompts(self) -> list[dict[str, Any]]:
        path = self.state_dir / "agent-prompts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_prompts(self, count: int) -> list[dict[str, Any]]:
        end = time.monotonic() + PROMPTS_DEADLINE_S
        while len(self.prompts()) < count:
            assert time.monotonic() < end, (
                f"{len(self.prompts())} of {count} prompts:\n{self.console()}"
            )
            time.sleep(0.1)
        return self.prompts()


def khook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "khook_core.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Any]:
    started: list[RunningStack] = []

    def start(*args: str, env: dict[str, str] | None = None) -> RunningStack:
        state_dir = tmp_path / "state"
        output = tmp_path / f"console-{len(started)}.txt"
        with output.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "khook_core.cli",
                    "up",
                    "--state-dir",
                    str(state_dir),
                    "--config",
                    str(REPO / "config"),
                    *args,
                ],
                cwd=REPO,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        started.append(RunningStack(proc, state_dir, output))
        return started[-1]

    yield start
    for stack in started:  # only after a failed test is anything still running
        if stack.proc.poll() is None:
            info = stackfile.read(stack.state_dir)
            stop_group(stack.proc.pid, 5.0, stack.proc)
            for child in info.children if info else []:
                stop_group(child.pid, 5.0)


def rendered_text_of(hook: str, event_type: str) -> list[str]:
    """The literal parts of the hook's prompt template: each must appear in the prompt."""
    config = load_config(REPO / "config")
    [rule] = [r for r in config.hooks.rules if r.hook == hook and r.event_type == event_type]
    return [s.strip() for s in rule.template.segments if isinstance(s, str) and len(s.strip()) > 3]


def send_one_event_per_source(stack: RunningStack, tmp_path: Path) -> None:
    first_event = tmp_path / "event.jsonl"
    first_event.write_text((SAMPLES / "kubernetes" / "events.jsonl").read_text().splitlines()[0])
    for source, path in {"kubernetes": first_event, **ONE_EVENT}.items():
        done = khook(
            "send", "--state-dir", str(stack.state_dir), "--shift-to-now", source, str(path)
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert source in done.stdout
    github = khook(
        "send",
        "--state-dir",
        str(stack.state_dir),
        "--path",
        "/github",
        "webhook",
        str(SAMPLES / "webhook" / "github-workflow-run-failure.json"),
    )
    assert "HTTP 200: dispatched deployment-failed" in github.stdout, github.stdout


def stop_and_check_nothing_is_left(stack: RunningStack, info: StackInfo) -> None:
    groups = [child.pid for child in info.children]
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(STOP_DEADLINE_S) == 0, stack.console()
    assert "nothing left running" in stack.console()
    assert [pid for pid in groups if group_alive(pid)] == []
    assert not stackfile.path_in(stack.state_dir).exists()


@pytest.mark.parametrize("bus", ["emulator", "memory"])
def test_every_source_reaches_the_demo_agent_and_sigint_leaves_nothing(
    bus: str,
    tmp_path: Path,
    start_stack: Any,
) -> None:
    if bus == "emulator":
        launcher, reason = find_launcher()
        if launcher is None:
            unavailable(reason)
    else:  # a stack that died without cleaning up must not stop the next one
        (tmp_path / "state").mkdir()
        stackfile.write(
            tmp_path / "state",
            StackInfo(pid=2**22 + 4321, started="earlier", state_dir="x", config_dir="config"),
        )
    stack = start_stack("--bus", bus, "--no-forwarder", "--sweep-every", "1")

    info = stack.wait_ready()

    assert info.bus is not None
    assert info.bus.kind == bus
    assert set(info.functions) == {
        "alertmanager",
        "cdc",
        "console",
        "gcp",
        "kafka",
        "kubernetes",
        "sweep",
        "tasks",
        "webhook",
    }
    assert len(info.children) == 9 + (bus == "emulator")
    console = stack.console()
    assert "Ready. In another terminal: make demo" in console
    assert "  sweep      a tick every 1 s → topic khook-sweep" in console
    sweep_log = stack.state_dir / "logs" / "function-sweep.log"
    end = time.monotonic() + PROMPTS_DEADLINE_S
    while "sweep tick" not in (sweep_log.read_text() if sweep_log.exists() else ""):
        assert time.monotonic() < end, f"no tick reached the sweep function:\n{console}"
        time.sleep(0.1)
    assert [line for line in console.splitlines() if "forwarder" in line] == [
        "  forwarder  skipped: --no-forwarder"
    ]
    if bus == "memory":
        assert "removed stale" in console
        second = khook("up", "--state-dir", str(stack.state_dir), "--bus", "memory")
        assert second.returncode == 1
        assert "already running" in second.stdout

    send_one_event_per_source(stack, tmp_path)

    prompts = stack.wait_prompts(7)
    by_source = {p["metadata"]["khook.source"]: p for p in prompts}
    assert set(by_source) == {"kubernetes", *ONE_EVENT}
    for prompt in prompts:
        meta = prompt["metadata"]
        for text in rendered_text_of(meta["khook.hook"], meta["khook.eventType"]):
            assert text in prompt["prompt"], (meta, prompt["prompt"])
        assert "<<<KHOOK_EVENT_DATA" in prompt["prompt"]
        assert prompt["repeat"] is False
    assert "web-7d9f8c6b5-x2x9q" in by_source["kubernetes"]["prompt"]
    assert "orders-fulfilment" in by_source["kafka"]["prompt"]
    assert "received a prompt" in stack.console()

    stop_and_check_nothing_is_left(stack, info)
    assert os.path.exists(stack.state_dir / "state.db")
    if bus == "memory":
        restart_remembers_what_fired(start_stack, tmp_path)


def restart_remembers_what_fired(start_stack: Any, tmp_path: Path) -> None:
    """A second `make run` on the same state directory starts cleanly, and the claims made
    before the restart still hold: the same event again is a duplicate, not a second run."""
    again = start_stack("--bus", "memory", "--no-forwarder", "--sweep-every", "0")
    info = again.wait_ready()
    before = len(again.prompts())
    event = tmp_path / "event.jsonl"  # written by send_one_event_per_source
    done = khook(
        "send", "--state-dir", str(again.state_dir), "--shift-to-now", "kubernetes", str(event)
    )
    assert done.returncode == 0, done.stderr + done.stdout
    end = time.monotonic() + PROMPTS_DEADLINE_S
    while "duplicate" not in again.console():
        assert time.monotonic() < end, again.console()
        time.sleep(0.1)
    assert len(again.prompts()) == before
    stop_and_check_nothing_is_left(again, info)


def test_the_forwarder_brings_a_reachable_clusters_events_to_the_agent(
    tmp_path: Path,
    start_stack: Any,
    kube_api: FakeKubeApi,
) -> None:
    launcher, reason = find_launcher()
    if launcher is None:
        unavailable(reason)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(url=kube_api.url))
    stack = start_stack(env={"KUBECONFIG": str(kubeconfig)})

    info = stack.wait_ready()

    assert info.forwarder.isdigit(), info.forwarder
    assert "forwarder  watching cluster test-cluster" in stack.console()
    forwarder_log = stack.state_dir / "logs" / "forwarder.log"
    end = time.monotonic() + READY_DEADLINE_S
    while "listed events.k8s.io/v1 events" not in (
        forwarder_log.read_text() if forwarder_log.exists() else ""
    ):
        assert time.monotonic() < end, stack.console()
        time.sleep(0.1)
    kube_api.create(
        "BackOff",
        "Back-off restarting failed container app",
        namespace="default",
        object_name="web-forwarded",
    )
    [prompt] = stack.wait_prompts(1)
    assert 'Pod "web-forwarded" in namespace "default" restarted' in prompt["prompt"]
    assert prompt["metadata"]["khook.source"] == "kubernetes"

    stop_and_check_nothing_is_left(stack, info)
    assert "forwarder stopped (queue flushed)" in forwarder_log.read_text()


BLOCK_SEARCH = range(20000, 30000, 50)
"""Where the restart test looks for a free block of ports: below the kernel's ephemeral range,
away from the default block another test's stack may hold."""


def free_block() -> int:
    """A base port whose whole block nothing listens on now."""
    for base in random.sample(BLOCK_SEARCH, len(BLOCK_SEARCH)):
        if all(is_free(port) for port in range(base, base + BLOCK_SIZE)):
            return base
    raise AssertionError("no free block of ports")


def ports_of(info: StackInfo) -> dict[str, int]:
    assert info.bus is not None
    assert info.agent_url is not None
    ports = {
        "bus": int(info.bus.host.rsplit(":", 1)[1]),
        "agent": int(info.agent_url.rsplit(":", 1)[1]),
    }
    for name, function in info.functions.items():
        ports[name] = int(function.url.rstrip("/").rsplit(":", 1)[1])
    return ports


def wait_console(stack: RunningStack, text: str) -> None:
    end = time.monotonic() + PROMPTS_DEADLINE_S
    while text not in stack.console():
        assert time.monotonic() < end, f"{text!r} not on the console:\n{stack.console()}"
        time.sleep(0.1)


def test_quick_restarts_under_traffic_keep_every_port_and_the_console_names_each_event(
    tmp_path: Path,
    start_stack: Any,
) -> None:
    base = free_block()
    args = ("--bus", "memory", "--no-forwarder", "--sweep-every", "0", "--base-port", str(base))
    bad_alert = tmp_path / "bad-alert.json"
    bad_alert.write_text(json.dumps({"alerts": [[]]}))
    seen = []
    for run in range(3):
        holder = socket.socket() if run == 2 else None
        if holder is not None:  # the third run finds the agent's port held by another process
            holder.bind(("127.0.0.1", base + 1))
            holder.listen()
        stack = start_stack(*args)
        info = stack.wait_ready()
        seen.append(ports_of(info))
        # traffic: Pub/Sub messages and HTTP requests, leaving connections in TIME-WAIT
        sent = khook(
            "send",
            "--state-dir",
            str(stack.state_dir),
            "--shift-to-now",
            "kubernetes",
            str(SAMPLES / "kubernetes" / "events.jsonl"),
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        alerts = khook(
            "send",
            "--state-dir",
            str(stack.state_dir),
            "--shift-to-now",
            "alertmanager",
            str(SAMPLES / "alertmanager" / "kube-pod-crash-looping-firing.json"),
            str(bad_alert),
        )
        assert "HTTP 422" in alerts.stdout, alerts.stdout
        assert "alerts[0]: expected an object, got an array" in alerts.stdout
        if run == 0:
            wait_console(stack, "  kubernetes   message 1 from events.jsonl:1: ")
            wait_console(stack, "for pod-restart Pod default/web-7d9f8c6b5-x2x9q")
            wait_console(stack, "for kube-pod-crash-looping Pod shop/worker-0 (event 2 of 2)")
        if holder is not None:
            note = (
                f"  note       port {base + 1} (demo agent) is taken by pid {os.getpid()} "
                f"({sys.executable}"
            )
            assert note in stack.console()
            holder.close()
        stop_and_check_nothing_is_left(stack, info)  # and the next run starts at once

    functions = sorted(n for n in seen[0] if n not in ("bus", "agent"))
    expected = {"bus": base, "agent": base + 1} | {
        name: base + 10 + index for index, name in enumerate(functions)
    }
    assert seen[0] == expected
    assert seen[1] == expected
    assert seen[2] == expected | {"agent": seen[2]["agent"]}
    assert seen[2]["agent"] != base + 1
