"""The ``khook`` console script as a new user meets it: exit statuses a script can trust, one-line
errors naming what was typed, readable tables, the basics (version, help, completion, status).

Every test runs the installed ``khook`` entry point in a subprocess, as a user's shell does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event
from tests.support.paths import REPO

KHOOK = str(Path(sys.executable).with_name("khook"))
SAMPLES = REPO / "config" / "samples"
NOW = "2026-01-05T10:35:00Z"
COMMANDS = (
    "validate",
    "sources",
    "schema",
    "sweep",
    "replay",
    "firings",
    "status",
    "up",
    "send",
    "completion",
)


def khook(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KHOOK, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a usage error (exit 2), with nothing on stdout."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    return line


def replay_into(state: Path, source: str, *files: Path, config: Path = REPO / "config") -> None:
    done = khook(
        "replay",
        "--source",
        source,
        "--config",
        str(config),
        "--state",
        f"sqlite:{state}",
        "--now",
        "auto",
        *map(str, files),
    )
    assert done.returncode == 0, done.stderr


# -- 1. stable local ports -------------------------------------------------------------------


def test_base_port_names_the_flag_or_the_variable_it_came_from(tmp_path: Path):
    flag = one_line_error(khook("up", "--state-dir", str(tmp_path), "--base-port", "80"))
    assert (
        flag == "khook up: --base-port 80: expected a port from 1024 to 65505 (the stack "
        "uses 30 ports from there)"
    )
    variable = one_line_error(
        khook("up", "--state-dir", str(tmp_path), env={"KHOOK_BASE_PORT": "lots"})
    )
    assert variable == "khook up: KHOOK_BASE_PORT lots: expected a port number"
    assert list(tmp_path.iterdir()) == []  # refused before anything started


# -- 2. exit codes a script can trust --------------------------------------------------------


def test_replay_exits_1_when_an_input_is_invalid_unless_allowed(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    text = "\n".join([json.dumps(core_event()), "{not json"])
    args = ("replay", "--source", "kubernetes", "--config", str(config), "--now", NOW)
    strict = khook(*args, stdin=text)
    assert strict.returncode == 1
    assert strict.stderr.splitlines()[-1] == (
        "khook replay: 1 invalid input (see failed:invalid above; --allow-invalid to exit 0 anyway)"
    )
    allowed = khook(*args, "--allow-invalid", stdin=text)
    assert allowed.returncode == 0, allowed.stderr
    assert [json.loads(line)["decision"] for line in allowed.stdout.splitlines()] == [
        "dispatched",
        "dispatched",
        "failed:invalid",
    ]


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("web", "khook firings: --hook web: expected NAMESPACE/NAME, e.g. default/pod-health"),
        (
            "shop/nope",
            "khook firings: --hook shop/nope: no such hook (loaded: shop/audit, shop/web)",
        ),
    ],
)
def test_firings_of_a_malformed_or_unknown_hook_is_a_usage_error(
    tmp_path: Path, hook: str, expected: str
):
    config = make_config(tmp_path, SHOP_HOOK)
    state = tmp_path / "state.db"
    replay_into(state, "kubernetes", SAMPLES / "kubernetes" / "events.jsonl", config=config)
    result = khook("firings", "--state", f"sqlite:{state}", "--config", str(config), "--hook", hook)
    assert one_line_error(result) == expected
    known = khook(
        "firings", "--state", f"sqlite:{state}", "--config", str(config), "--hook", "shop/web"
    )
    assert known.returncode == 0, known.stderr


def test_read_only_commands_refuse_a_missing_state_file_and_none_creates_directories(
    tmp_path: Path,
):
    missing = tmp_path / "nowhere" / "state.db"
    firings = one_line_error(khook("firings", "--state", f"sqlite:{missing}"))
    assert firings == (
        f"khook firings: --state sqlite:{missing}: {missing} does not exist (nothing recorded "
        "there yet)"
    )
    replay = one_line_error(
        khook(
            "replay",
            "--source",
            "kubernetes",
            "--config",
            "config",
            "--state",
            f"sqlite:{missing}",
            stdin="{}",
        )
    )
    assert replay == (
        f"khook replay: --state sqlite:{missing}: the directory {missing.parent} does not exist"
    )
    assert not missing.parent.exists()
    # KHOOK_STATE's default is sqlite:.khook/state.db, and a fresh checkout has no .khook/
    env = {k: v for k, v in os.environ.items() if k != "KHOOK_STATE"}
    default = subprocess.run(
        [KHOOK, "firings"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert one_line_error(default) == (
        "khook firings: KHOOK_STATE sqlite:.khook/state.db: .khook/state.db does not exist "
        "(nothing recorded there yet)"
    )
    assert list(tmp_path.iterdir()) == []


# -- 3. no tracebacks: one line naming the path ------------------------------------------------


def test_file_and_directory_problems_are_one_line_naming_the_path(tmp_path: Path):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a directory")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    gone = tmp_path / "gone"
    unreadable = tmp_path / "config"  # its mapping "file" is a directory
    (unreadable / "event-mappings.yaml").mkdir(parents=True)
    replay = ("replay", "--source", "kubernetes", "--config", "config")
    cases = [
        ((*replay, str(gone)), f"khook replay: {gone}: no such file or directory"),
        ((*replay, str(tmp_path)), f"khook replay: {tmp_path}: is a directory"),
        ((*replay, str(binary)), f"khook replay: {binary}: not UTF-8 text (expected JSON)"),
        (("validate", "--config", str(gone)),
         f"khook validate: --config {gone}: the directory does not exist"),
        (("validate", "--config", str(unreadable)),
         f"{unreadable / 'event-mappings.yaml'}: cannot read: is a directory"),
        (("sources", "--config", str(a_file)),
         f"khook sources: --config {a_file}: not a directory"),
        (("up", "--state-dir", str(a_file / "state"), "--config", "config"),
         f"khook up: {a_file / 'state' / 'logs'}: not a directory"),
        (("send", "kubernetes", str(tmp_path)),
         f"khook send: {tmp_path}: is a directory"),
    ]  # fmt: skip
    for args, expected in cases:
        result = khook(*args)
        message = (result.stdout + result.stderr).strip()
        assert result.returncode == 2, (args, message)
        assert "Traceback" not in message
        assert message == expected, args


# -- 4. messages that name what the user typed -----------------------------------------------


def test_a_bad_state_url_names_the_flag_or_the_variable():
    flag = one_line_error(khook("firings", "--state", "foo:bar"))
    assert flag == (
        "khook firings: --state foo:bar: unknown state store (expected memory, sqlite:PATH or "
        "firestore)"
    )
    variable = one_line_error(khook("firings", env={"KHOOK_STATE": "foo:bar"}))
    assert variable.startswith("khook firings: KHOOK_STATE foo:bar: unknown state store")


def test_since_shows_the_accepted_forms():
    line = one_line_error(khook("firings", "--state", "memory", "--since", "yesterday"))
    assert line == (
        "khook firings: --since yesterday: expected a duration back from now (30m, 2h, 90s) "
        "or an RFC 3339 time (2026-01-05T10:00:00Z)"
    )


@pytest.mark.parametrize(
    ("source", "payload", "field", "detail"),
    [
        (
            "alertmanager",
            {"alerts": [[]]},
            "alerts[0]",
            "alerts[0]: expected an object, got an array",
        ),
        (
            "webhook",
            [[{"type": "x"}, {"type": "y", "resource": {"name": 3}}]],
            "events[1].resource.name",
            "events[1].resource.name: expected a string, got a number",
        ),
        ("kubernetes", [[1]], None, "expected an object (a Kubernetes Event), got an array"),
    ],
)
def test_schema_errors_use_json_words_and_json_paths(
    source: str, payload: object, field: str | None, detail: str
):
    """What ``failed:invalid`` says here is what an HTTP source answers in its 422 body."""
    result = khook(
        "replay",
        "--source",
        source,
        "--config",
        "config",
        "--allow-invalid",
        stdin=json.dumps(payload),
    )
    [line] = [json.loads(out) for out in result.stdout.splitlines()]
    assert line["decision"] == "failed:invalid"
    assert (line["field"], line["detail"]) == (field, detail)


# -- 5. firings a person can read ------------------------------------------------------------


def test_firings_is_an_aligned_table_with_a_header_and_says_when_empty(tmp_path: Path):
    state = tmp_path / "state.db"
    replay_into(state, "kubernetes", SAMPLES / "kubernetes" / "events.jsonl")
    replay_into(state, "alertmanager", SAMPLES / "alertmanager" / "disk-full.json")
    table = khook("firings", "--state", f"sqlite:{state}")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "TIME",
        "OUTCOME",
        "HOOK",
        "EVENT",
        "TYPE",
        "RESOURCE",
        "AGENT",
        "TASK",
        "STATE",
        "DETAIL",
    ]
    columns = [header.index(name) for name in ("OUTCOME", "HOOK", "EVENT TYPE", "RESOURCE")]
    assert len(rows) == 8  # 7 Kubernetes events, 1 alert
    for row in rows:
        for start in columns:
            assert row[start - 2 : start] == "  ", (row, start)
            assert row[start] != " ", (row, start)
    disk = next(row for row in rows if "disk-full" in row)
    resource = disk[columns[3] :].split()[0]
    assert resource == "Instance/db-1.internal:9100"  # no leading "/" without a namespace

    empty = khook("firings", "--state", f"sqlite:{state}", "--since", "30m")
    assert empty.returncode == 0
    assert empty.stdout == ""
    assert empty.stderr == f"no firings in the last 30m (sqlite:{state})\n"

    as_json = khook("firings", "--state", f"sqlite:{state}", "--json")
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(records) == 8
    assert {"key", "hook", "event_type", "resource", "agent", "outcome", "at"} <= set(records[0])
    assert any(r["resource"] == "/Instance/db-1.internal:9100" for r in records)  # unchanged


# -- 6. replay your own cluster --------------------------------------------------------------


def test_replay_now_auto_judges_each_event_at_its_own_time(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    events = [
        core_event(
            name="web-1",
            uid="a",
            first="2025-03-01T08:00:00Z",
            last="2025-03-01T08:05:00Z",
            created="2025-03-01T08:00:00Z",
        ),
        core_event(
            name="web-2",
            uid="b",
            first="2025-06-01T08:00:00Z",
            last="2025-06-01T08:05:00Z",
            created="2025-06-01T08:00:00Z",
        ),
    ]
    text = "\n".join(json.dumps(e) for e in events)
    args = ("replay", "--source", "kubernetes", "--config", str(config))
    wall_clock = khook(*args, stdin=text)
    assert {json.loads(x)["decision"] for x in wall_clock.stdout.splitlines()} == {"dropped:stale"}
    auto = khook(*args, "--now", "auto", stdin=text)
    assert auto.returncode == 0, auto.stderr
    decided = [
        (json.loads(x)["input"], json.loads(x)["decision"]) for x in auto.stdout.splitlines()
    ]
    assert decided == [(0, "dispatched"), (0, "dispatched"), (1, "dispatched"), (1, "dispatched")]
    bad = one_line_error(khook(*args, "--now", "soon", stdin=text))
    assert (
        bad == "khook replay: --now soon: expected an RFC 3339 time (2026-01-05T10:35:00Z) or auto"
    )


# -- 7. the sample replay tells its story in order ---------------------------------------------


def test_make_replay_samples_prints_the_summary_after_the_decisions():
    done = subprocess.run(
        ["make", "-s", "-o", "install", "replay-samples"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.rstrip().splitlines()
    assert lines[-1].startswith("replayed 10 payloads from kubernetes: ")
    assert lines.index(lines[-1]) > max(i for i, x in enumerate(lines) if x.startswith("#9 "))


# -- 8. the CLI basics -----------------------------------------------------------------------


def test_version_prints_the_installed_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = khook("--version")
    assert result.returncode == 0
    assert result.stdout == f"khook {version}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_gives_every_option_a_default_and_an_example(command: str):
    text = khook(command, "--help").stdout
    assert re.search(r"^examples?:\n  .*khook ", text, re.MULTILINE), text
    options = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n(?=  -)", options)
    for entry in entries:
        if entry.strip().startswith("-h, --help"):
            continue
        words = " ".join(entry.split())
        assert "default" in words or "(required)" in words, words


def test_bash_completion_completes_commands_options_and_values():
    script = khook("completion", "bash").stdout

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        shell = (
            f'source /dev/stdin <<< "$KHOOK_COMPLETION"; COMP_WORDS=({line}); '
            f'COMP_CWORD={len(words) - 1}; _khook; echo "${{COMPREPLY[*]}}"'
        )
        done = subprocess.run(
            ["bash", "-c", shell],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "KHOOK_COMPLETION": script},
            check=True,
        )
        return done.stdout.split()

    assert complete("khook", "fi") == ["firings"]
    assert complete("khook", "up", "--b") == ["--base-port", "--bus"]
    assert complete("khook", "up", "--bus", "m") == ["memory"]
    assert complete("khook", "schema", "h") == ["hooks"]
    zsh = khook("completion", "zsh").stdout
    assert zsh.startswith("#compdef khook\n")
    assert "bashcompinit" in zsh
    assert "complete -o default -F _khook khook" in zsh


def test_status_summarises_hooks_firings_backlogs_circuits_and_errors(tmp_path: Path):
    state = tmp_path / "state.db"
    replay_into(state, "kubernetes", SAMPLES / "kubernetes" / "events.jsonl")
    result = khook(
        "status",
        "--state-dir",
        str(tmp_path / "none"),
        "--state",
        f"sqlite:{state}",
        "--config",
        "config",
        "--since",
        "100000h",
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert rows["stack"].startswith(f"stack      not running from {tmp_path / 'none'}/")
    assert rows["hooks"].startswith("hooks      9 loaded from config/ (17 event configurations)")
    assert rows["firings"].startswith("firings    last 100000h: 7 dispatched (newest 2026-")
    assert rows["held"] == "held back  nothing waiting for the sweep"
    assert re.fullmatch(r"circuits   all \d+ closed", rows["circuits"])
    assert rows["errors"] == "errors     none in the last 100000h"
    fresh = khook(
        "status",
        "--state-dir",
        str(tmp_path / "none"),
        "--state",
        f"sqlite:{tmp_path / 'never.db'}",
        "--config",
        "config",
    )
    assert f"sqlite:{tmp_path / 'never.db'}: nothing recorded yet" in fresh.stdout
    assert not (tmp_path / "never.db").exists()


# -- 9. small surprises ----------------------------------------------------------------------


def test_sending_an_empty_file_says_so(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n \n")
    line = one_line_error(khook("send", "--state-dir", str(tmp_path), "kubernetes", str(empty)))
    assert line == f"khook send: {empty}: the file is empty (nothing to send)"


def test_an_empty_hook_file_is_a_warning_in_validate(tmp_path: Path):
    config = make_config(tmp_path, SHOP_HOOK)
    blank = config / "hooks" / "draft.yaml"
    blank.write_text("# to do: a hook for the payments team\n")
    result = khook("validate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"{blank}: no hook in this file (warning: empty)\n"


def test_the_license_is_an_spdx_string_and_install_shows_progress():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # a table is deprecated by setuptools
    recipe = (REPO / "Makefile").read_text().split("$(STAMP): pyproject.toml", 1)[1]
    install = next(line for line in recipe.splitlines() if "-e '.[dev]'" in line)
    assert "--quiet" not in install
    assert "--progress-bar on" in install


def test_hooks_doc_explains_budget_suppression_and_the_mapping_row_format():
    from khook_core.mapping import MappingRow

    doc = (REPO / "docs" / "hooks.md").read_text()
    first_hook = doc.split("## Trying a first hook", 1)[1].split("\n## ", 1)[0]
    assert "`suppressed:budget`" in first_hook
    assert "budgets.yaml" in first_hook
    rows = doc.split("### Adding an event type: a mapping row", 1)[1].split("\n## ", 1)[0]
    for name in MappingRow.model_fields:
        assert f"| `{name}` |" in rows, name


TYPO_HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: web, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restrat
    agentRef: {name: k8s-agent, namespace: kagent}
    prompt: |
      Pod {{.ResourceName}} restarted.
      Compare it with {{.PodName}} and
      with {{.Foo}}, then read {{.Reason
"""


def test_an_unknown_event_type_suggests_the_closest_and_how_to_add_a_mapping_row(
    tmp_path: Path,
):
    result = khook("validate", "--config", str(make_config(tmp_path, TYPO_HOOK)))
    assert result.returncode == 1
    [type_line] = [line for line in result.stderr.splitlines() if ".eventType:" in line]
    assert type_line.startswith(f"{tmp_path}/config/hooks/hooks.yaml:6: hook shop/web: ")
    assert "unknown eventType 'pod-restrat'" in type_line
    assert "did you mean 'pod-restart'?" in type_line
    assert "a new type needs a row in event-mappings.yaml" in type_line


def test_every_template_problem_is_reported_at_its_own_line(tmp_path: Path):
    result = khook("validate", "--config", str(make_config(tmp_path, TYPO_HOOK)))
    assert result.returncode == 1
    hooks = f"{tmp_path}/config/hooks/hooks.yaml"
    prompt_lines = [line for line in result.stderr.splitlines() if ".prompt:" in line]
    assert [line.split(": hook ")[0] for line in prompt_lines] == [
        f"{hooks}:10",
        f"{hooks}:11",
        f"{hooks}:11",
    ]
    assert "unknown placeholder {{.PodName}}" in prompt_lines[0]
    assert "unknown placeholder {{.Foo}}" in prompt_lines[1]
    assert "unsupported template syntax near '{{.Reason'" in prompt_lines[2]
