"""The ``khook`` command, run as a real process the way users run it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.configdir import DISK_FULL_HOOK, MISSPELT_SOURCE_HOOK, SHOP_HOOK, make_config
from tests.support.k8s_events import core_event
from tests.support.paths import COMPAT, REPO

NOW = "2026-01-05T10:35:00Z"
STORM_SHOP_HOOK = SHOP_HOOK.replace(
    '    prompt: "Pod {{.ResourceName}} restarted: {{.Reason}}"',
    '    coalesce: {window: 5m}\n    prompt: "Pod {{.ResourceName}} restarted: {{.Reason}}"',
).replace(
    '    prompt: "Record the restart',
    '    rateLimit: {runs: 1, per: 1h}\n    prompt: "Record the restart',
)
"""shop/web coalesced per workload in 5 minutes, shop/audit at most one run an hour."""


def khook(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "khook_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=env,
    )


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_validate_accepts_the_bundled_config():
    result = khook("validate", "--config", "config")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_validate_prints_one_file_line_message_per_problem(tmp_path: Path):
    config = make_config(
        tmp_path,
        SHOP_HOOK.replace("{{.Reason}}", "{{.Nope}}").replace(
            "eventType: probe-failed", "eventType: pod-exploded"
        ),
    )
    result = khook("validate", "--config", str(config))
    assert result.returncode == 1
    problems = result.stderr.strip().splitlines()
    hooks_file = config / "hooks" / "hooks.yaml"
    assert len(problems) == 2
    assert problems[0] == (
        f"{hooks_file}:8: hook shop/web: spec.eventConfigurations[0].prompt: unknown placeholder "
        "{{.Nope}} (known: EventType, ResourceName, Namespace, Reason, Message, EventMessage, "
        "Timestamp, EventTime, Source, Severity, Kind, Count, FirstTimestamp, EventId, Tags, "
        "Metadata)"
    )
    assert problems[1].startswith(
        f"{hooks_file}:9: hook shop/web: spec.eventConfigurations[1].eventType: unknown eventType "
        "'pod-exploded' (known: "
    )
    assert "pod-restart" in problems[1]


@pytest.mark.parametrize("form", ["jsonl", "array", "single"])
def test_replay_reads_json_lines_arrays_and_single_documents(tmp_path: Path, form: str):
    config = make_config(tmp_path, SHOP_HOOK)
    events = [core_event(), core_event(namespace="other")]
    text = {
        "jsonl": "\n".join(json.dumps(e) for e in events),
        "array": json.dumps(events),
        "single": json.dumps(events[0]),
    }[form]
    result = khook(
        "replay", "--source", "kubernetes", "--config", str(config), "--now", NOW, stdin=text
    )
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    expected = [(0, "dispatched"), (0, "dispatched")] + (
        [(1, "no-hook")] if form != "single" else []
    )
    assert [(o["input"], o["decision"]) for o in out] == expected
    first = out[0]
    assert first["hook"] == "shop/web"
    assert first["agent"] == "kagent/k8s-agent"
    assert isinstance(first["prompt"], str)
    assert first["prompt"].startswith('Pod "web-0" restarted')
    event = first["event"]
    assert isinstance(event, dict)
    assert event["type"] == "pod-restart"
    assert event["resource"]["name"] == "web-0"
    assert "replayed" in result.stderr


def test_replay_explains_every_payload_including_bad_ones(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    text = "\n".join(
        [
            json.dumps(core_event()),
            "{not json",
            json.dumps([1]),
            json.dumps(core_event("Pulled", "ok", type_="Normal")),
        ]
    )
    result = khook(
        "replay", "--source", "kubernetes", "--config", str(config), "--now", NOW, stdin=text
    )
    out = lines(result.stdout)
    assert [(o["input"], o["decision"]) for o in out] == [
        (0, "dispatched"),
        (0, "dispatched"),
        (1, "failed:invalid"),
        (2, "failed:invalid"),
        (3, "dropped:normal"),
    ]
    assert out[3]["event"] is None


def test_replay_without_now_uses_the_wall_clock(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    result = khook(
        "replay", "--source", "kubernetes", "--config", str(config), stdin=json.dumps(core_event())
    )
    assert [o["decision"] for o in lines(result.stdout)] == ["dropped:stale"]


def test_replay_with_sqlite_state_remembers_across_runs(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    args = (
        "replay",
        "--source",
        "kubernetes",
        "--config",
        str(config),
        "--now",
        NOW,
        "--state",
        f"sqlite:{tmp_path}/state.db",
    )
    assert {o["decision"] for o in lines(khook(*args, stdin=json.dumps(core_event())).stdout)} == {
        "dispatched"
    }
    assert {o["decision"] for o in lines(khook(*args, stdin=json.dumps(core_event())).stdout)} == {
        "duplicate"
    }
    firings = khook(
        "firings", "--state", f"sqlite:{tmp_path}/state.db", "--hook", "shop/web", "--json"
    )
    assert [f["outcome"] for f in lines(firings.stdout)] == ["dispatched"]


def test_replay_of_the_bundled_samples_matches_what_make_run_shows():
    result = khook(
        "replay", "--source", "kubernetes", "--now", NOW, "config/samples/kubernetes/events.jsonl"
    )
    decisions = [o["decision"] for o in lines(result.stdout)]
    assert decisions.count("dispatched") >= 5
    assert {"duplicate", "dropped:normal", "dropped:stale", "no-hook"} <= set(decisions)


def test_unknown_source_is_a_usage_error_naming_the_installed_ones():
    result = khook("replay", "--source", "nope", "--now", NOW, stdin="{}\n{}")
    assert result.returncode == 2  # argparse's status for a bad argument
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "khook replay: unknown source 'nope' "
        "(installed: alertmanager, cdc, gcp, kafka, kubernetes, webhook)"
    ]


def test_readme_command_table_names_every_command_and_schema():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^    ([a-z]+)\b", khook("--help").stdout, re.MULTILINE)
    assert "completion" in commands
    for name in commands:
        assert f"| `khook {name}" in readme or f"/ `khook {name}" in readme, name
    schemas = "\\|".join(json.loads(khook("schema").stdout))
    assert f"`khook schema [{schemas}]`" in readme


def test_sources_lists_versions_and_event_types():
    result = khook("sources")
    assert result.returncode == 0
    row = next(line for line in result.stdout.splitlines() if line.startswith("kubernetes\t"))
    assert "pod-restart" in row
    assert "node-not-ready" in row


def test_schema_prints_json_schema_of_each_file():
    result = khook("schema")
    schemas = json.loads(result.stdout)
    assert set(schemas) == {"mappings", "plugins", "hooks", "budgets"}
    hook_props = schemas["hooks"]["$defs"]["EventConfiguration"]["properties"]
    assert {"eventType", "agentRef", "prompt", "agentId"} <= set(hook_props)


def test_replay_passes_transport_attributes_to_the_source():
    sample = "config/samples/kafka/consumer-lag.json"
    without = lines(khook("replay", "--source", "kafka", "--now", NOW, sample).stdout)
    assert [o["decision"] for o in without] == ["failed:invalid"]  # the sink's metadata is needed
    with_meta = khook(
        "replay",
        "--source",
        "kafka",
        "--now",
        NOW,
        "--attribute",
        "kafka.topic=ops",
        "--attribute",
        "kafka.partition=0",
        "--attribute",
        "kafka.offset=7",
        sample,
    )
    assert [o["decision"] for o in lines(with_meta.stdout)] == ["dispatched"]
    bad = khook("replay", "--source", "kafka", "--attribute", "novalue", sample)
    assert bad.returncode == 2
    assert "--attribute novalue: expected KEY=VALUE" in bad.stderr


def test_replay_shows_coalescing_and_budget_decisions(tmp_path: Path):
    config = make_config(tmp_path, STORM_SHOP_HOOK)
    pods = ["web-7d9f8c6b5-bbbbb", "web-7d9f8c6b5-ccccc", "web-7d9f8c6b5-ddddd"]
    text = "\n".join(json.dumps(core_event(name=p, uid=p)) for p in pods)
    result = khook(
        "replay", "--source", "kubernetes", "--config", str(config), "--now", NOW, stdin=text
    )
    decisions = [(o["hook"], o["decision"]) for o in lines(result.stdout)]
    assert [d for h, d in decisions if h == "shop/web"] == ["dispatched", "coalesced", "coalesced"]
    assert [d for h, d in decisions if h == "shop/audit"] == [
        "dispatched",
        "suppressed:budget",
        "suppressed:budget",
    ]


def test_sweep_after_a_replay_runs_each_quiet_tail_once_within_its_budget(tmp_path: Path):
    config, state = make_config(tmp_path, STORM_SHOP_HOOK), f"sqlite:{tmp_path / 'state.db'}"
    pods = ["web-7d9f8c6b5-bbbbb", "web-7d9f8c6b5-ccccc", "web-7d9f8c6b5-ddddd"]
    text = "\n".join(json.dumps(core_event(name=p, uid=p)) for p in pods)
    khook(
        "replay",
        "--source",
        "kubernetes",
        "--config",
        str(config),
        "--state",
        state,
        "--now",
        NOW,
        stdin=text,
    )

    def sweep(now: str) -> tuple[list[tuple[object, object, object]], str]:
        done = khook("sweep", "--config", str(config), "--state", state, "--now", now, "--dry-run")
        assert done.returncode == 0, done.stderr
        rows = [(o["hook"], o["decision"], held(o)) for o in lines(done.stdout)]
        return rows, done.stderr

    def held(decision: dict[str, object]) -> object:
        """The count of events the run's prompt summarises as held back (None: no run)."""
        prompt = str(decision["prompt"] or "")
        if not prompt:
            return None
        block = prompt.split(">>>\n", 1)[1].split("\n<<<END_KHOOK_EVENT_DATA", 1)[0]
        return json.loads(block)["held_back"]["count"]

    early, _ = sweep("2026-01-05T10:36:00Z")
    assert sorted(early) == [
        ("shop/audit", "suppressed:budget", None),
        ("shop/web", "coalesced", None),
    ]
    later, _ = sweep("2026-01-05T10:41:00Z")  # the group's window has passed, not the hour
    assert sorted(later) == [
        ("shop/audit", "suppressed:budget", None),
        ("shop/web", "dispatched", 2),
    ]
    next_hour, _ = sweep("2026-01-05T11:00:01Z")
    assert next_hour == [("shop/audit", "dispatched", 2)]
    rows, summary = sweep("2026-01-05T11:00:02Z")
    assert rows == []
    assert "nothing held" in summary


def test_replay_shows_a_progress_bar_on_a_terminal_for_long_inputs(tmp_path: Path):
    import os
    import pty

    config = make_config(tmp_path, SHOP_HOOK)
    text = "\n".join(json.dumps(core_event(name=f"p-{i}", uid=f"u{i}")) for i in range(250))
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "khook_core.cli",
                "replay",
                "--source",
                "kubernetes",
                "--config",
                str(config),
                "--now",
                NOW,
            ],
            input=text.encode(),
            stdout=subprocess.PIPE,
            stderr=terminal,
            cwd=REPO,
            timeout=60,
            check=True,
        )
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal side is closed: everything has been read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(controller)
    assert b"[" + b"#" * 30 + b"] 250/250" in seen
    assert len(done.stdout.splitlines()) == 500  # two hooks a payload; the bar is not on stdout
    # Not a terminal (the other tests): no bar, only the summary.
    plain = khook(
        "replay", "--source", "kubernetes", "--config", str(config), "--now", NOW, stdin=text
    )
    assert "#" not in plain.stderr


NEVER_FIRING = {
    "misspelt-source": (
        MISSPELT_SOURCE_HOOK,
        "5: hook monitoring/alerts: spec.sources[0]: unknown source 'alertmnager' (installed "
        "or in the mapping table: alertmanager, cdc, gcp, kafka, kubernetes, prometheus, webhook); "
        "did you mean 'alertmanager'?",
    ),
    "type-of-another-source": (
        """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: streaming, namespace: data}
spec:
  sources: [kafka]
  eventConfigurations:
  - eventType: row-state-changed
    agentRef: {name: kafka-agent}
    prompt: "Row {{.ResourceName}} changed"
""",
        "7: hook data/streaming: spec.eventConfigurations[0].eventType: 'row-state-changed' "
        "never fires: the mapping table has it for cdc only, not for this hook's source kafka; "
        "add the source to spec.sources, or a mapping row to event-mappings.yaml",
    ),
    "plain-hook-non-kubernetes-type": (
        DISK_FULL_HOOK,
        "6: hook shop/disks: spec.eventConfigurations[0].eventType: 'disk-full' never fires: "
        "the mapping table has it for alertmanager, prometheus only, not for kubernetes (the "
        "source of a Hook without spec.sources); add the source to spec.sources, or a mapping "
        "row to event-mappings.yaml",
    ),
    "webhook-body-placeholder": (
        """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: notify, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restart
    webhook:
      url: https://hooks.example.com/notify
      body:
        text: "{{.Prompt}}"
        blocks:
        - title: "Pod {{.Podname}} restarted"
    prompt: "Pod {{.ResourceName}} restarted"
""",
        "12: hook shop/notify: spec.eventConfigurations[0].webhook.body.blocks[0].title: "
        "unknown placeholder {{.Podname}}",
    ),
}
"""Hooks that would load and never fire (or fail at each dispatch), and the one line each gets."""


@pytest.mark.parametrize("kind", sorted(NEVER_FIRING))
def test_validate_rejects_a_hook_that_can_never_fire_with_file_and_line(tmp_path: Path, kind: str):
    hooks, expected = NEVER_FIRING[kind]
    config = make_config(tmp_path, hooks)
    result = khook("validate", "--config", str(config))
    assert result.returncode == 1, result.stdout
    [problem] = result.stderr.strip().splitlines()
    assert problem.startswith(f"{config / 'hooks' / 'hooks.yaml'}:{expected}")


def test_validate_reports_every_problem_of_one_hook_at_once(tmp_path: Path):
    config = make_config(
        tmp_path,
        """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: mixed, namespace: shop}
spec:
  sources: [kafak, kafka]
  eventConfigurations:
  - eventType: high-cpu
    agentRef: {name: k8s-agent}
    prompt: "CPU of {{.ResourceName}}"
  - eventType: consumer-lga
    agentRef: {name: k8s-agent}
    prompt: "Lag of {{.ResourceName}}"
  - eventType: consumer-lag
    webhook: {url: "https://hooks.example.com/", body: {a: "{{.Nope}}", b: ["{{.Nada}}"]}}
    prompt: "Lag of {{.ResourceName}}"
""",
    )
    result = khook("validate", "--config", str(config))
    assert result.returncode == 1
    where = [line.split(": ", 3)[:3] for line in result.stderr.strip().splitlines()]
    hooks_file = str(config / "hooks" / "hooks.yaml")
    assert where == [
        [f"{hooks_file}:5", "hook shop/mixed", "spec.sources[0]"],
        [f"{hooks_file}:7", "hook shop/mixed", "spec.eventConfigurations[0].eventType"],
        [f"{hooks_file}:10", "hook shop/mixed", "spec.eventConfigurations[1].eventType"],
        [f"{hooks_file}:14", "hook shop/mixed", "spec.eventConfigurations[2].webhook.body.a"],
        [f"{hooks_file}:14", "hook shop/mixed", "spec.eventConfigurations[2].webhook.body.b[0]"],
    ]
    assert "did you mean 'kafka'?" in result.stderr
    assert "did you mean 'consumer-lag'?" in result.stderr


def test_validate_accepts_every_khook_example_with_the_project_mappings(tmp_path: Path):
    config = make_config(tmp_path, "")
    for example in sorted((COMPAT / "khook-examples").glob("*.yaml")):
        shutil.copy(example, config / "hooks" / example.name)
    result = khook("validate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "valid: 9 hooks" in result.stdout
