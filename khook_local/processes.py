"""Child processes in their own process groups, so stopping one never leaves a grandchild.

Launchers such as the emulator's wrapper script exec or fork java, and gunicorn forks workers:
signalling only the direct child would leave them running. Each child therefore starts a new
process group and is stopped by signalling the group (SIGTERM, then SIGKILL after a grace).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

STOP_GRACE_S: Final = 10.0
"""functions-framework stops in 1-2 s and the emulator in under 1 s; beyond this, SIGKILL."""


@dataclass
class Child:
    """One started process group; ``name`` is how the console and stack.json refer to it."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def start(self, env: Mapping[str, str], cwd: Path | None = None) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        logger.debug("started %s (pid %d): %s", self.name, self.proc.pid, " ".join(self.argv))
        return self

    def exit_code(self) -> int | None:
        """None while running."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the group, SIGKILL it if the leader lingers, and reap the leader."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc.pid, grace, proc)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def stop_group(
    pgid: int, grace: float = STOP_GRACE_S, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Stop process group ``pgid``; with ``proc`` (its leader, our child) reap it too."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        if proc is not None:
            proc.wait()
        return
    if proc is not None:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            logger.warning("process group %d ignored SIGTERM for %.0f s; killing it", pgid, grace)
            _kill(pgid)
            proc.wait(5)
    else:
        end = time.monotonic() + grace
        while group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.05)
        if group_alive(pgid):
            _kill(pgid)
    # Members that outlived the leader (a worker mid-request) go too.
    if group_alive(pgid):
        _kill(pgid)


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line(pid: int) -> str:
    """The command line of ``pid`` ("" if gone or unreadable); Linux /proc, else ``ps``."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.exists():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return ""
    try:
        done = subprocess.run(
            ["ps", "-p", str(pid), "-o", "command="],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def wait_http(url: str, child: Child | None, deadline_s: float) -> None:
    """Poll ``url`` until it answers HTTP, any status (a CloudEvent route answers GET with 405).

    Raises:
        RuntimeError: the child exited or the deadline passed; the message carries its log.
    """
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if child is not None and child.exit_code() is not None:
            raise RuntimeError(
                f"{child.name} exited with {child.exit_code()} while starting; "
                f"its log ({child.log_path}) ends with:\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a local http URL
                return
        except urllib.error.HTTPError as exc:
            exc.close()
            return
        except OSError:
            time.sleep(0.05)
    name = child.name if child is not None else url
    raise RuntimeError(f"{name} did not answer at {url} within {deadline_s:.0f} s")
