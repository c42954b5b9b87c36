"""The ``khook`` command imports the local stack (``khook_local``) only to run it.

Every other command (validate, replay, firings, ...) works where ``khook_local`` is not
installed, as in the forwarder's image; building the parser, which every command does, must not
import it either.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from khook_core.cli import stack_commands
from khook_local import ports
from tests.support.paths import REPO

PROBE = """
import json, sys
from khook_core.cli.main import main
status = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.partition(".")[0] == "khook_local")
print(json.dumps([status, loaded]))
"""


def run_khook(*args: str) -> tuple[int, list[str]]:
    """``khook ARGS`` in a fresh process: its exit status and the khook_local modules loaded."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    status, loaded = json.loads(done.stdout.splitlines()[-1])
    return status, loaded


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "--config", "config"),
        # --now auto reads each payload's newest timestamp (khook_core.timeshift).
        (
            "replay",
            "--source",
            "kubernetes",
            "--config",
            "config",
            "--state",
            "memory",
            "--now",
            "auto",
            "config/samples/kubernetes/events.jsonl",
        ),
    ],
    ids=["validate", "replay"],
)
def test_commands_that_do_not_run_the_stack_never_import_khook_local(args: tuple[str, ...]):
    status, loaded = run_khook(*args)
    assert status == 0
    assert loaded == []


def test_khook_send_imports_the_stack_it_feeds(tmp_path: Path):
    status, loaded = run_khook(
        "send",
        "--state-dir",
        str(tmp_path),
        "kubernetes",
        "config/samples/kubernetes/events.jsonl",
    )
    assert status != 0  # no stack runs from tmp_path
    assert "khook_local.send" in loaded


def test_the_up_help_names_the_stacks_own_port_defaults():
    expected = f"(default: ${ports.BASE_PORT_VARIABLE}, else {ports.DEFAULT_BASE_PORT})"
    assert stack_commands.BASE_PORT_HELP.endswith(expected)
