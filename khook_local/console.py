"""What ``khook up`` shows while it runs: start-up summary, decisions, prompts, dead letters.

Function processes log JSON (``KHOOK_LOG_FORMAT=json``) to files under ``.khook/logs/``; a
follower thread turns the lines a user cares about (each pipeline decision, every warning) into
one console line each, so the console tells the story without the noise of the raw logs.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

POLL_S: Final = 0.2
DECISION_LOGGERS: Final = ("khook_core.transport.", "khook_core.tracking.")
"""Loggers whose INFO lines are decisions (``kafka message 3: dispatched (ns/hook)``) or the
end of an agent task (``finding shop/web (completed, task 7f3a…): …``)."""
LOUD: Final = frozenset({"WARNING", "ERROR", "CRITICAL"})
IDLE_TICK: Final = ": nothing held"
"""The end of a sweep tick's tally when it found nothing: once a minute, kept off the console."""


@dataclass
class Console:
    """Serialised writes to the terminal (the agent, the follower and the stack share it)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, text: str = "") -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()


def summarize(record: dict[str, Any], log_name: str = "its log") -> str | None:
    """The console line for one JSON log record, or None to keep it off the console."""
    severity = str(record.get("severity", ""))
    logger = str(record.get("logger", ""))
    message = str(record.get("message", "")).strip()
    if not message:
        return None
    if message.startswith("Exception on ") and "exception" in record:
        # Flask's report of a raise: for Pub/Sub functions, how a transient failure asks for
        # redelivery; for anything else, a bug. Either way the traceback is in the log file.
        first = str(record["exception"]).strip().splitlines()[-1][:200]
        return f"answered HTTP 500 ({first}); traceback in {log_name}"
    if severity in LOUD:
        return f"{severity}: {message.splitlines()[0][:300]}"
    if severity == "INFO" and logger.startswith(DECISION_LOGGERS):
        return None if message.endswith(IDLE_TICK) else message
    return None


class LogFollower:
    """Follows the function logs and prints each decision and warning, prefixed by function."""

    def __init__(self, console: Console, files: dict[str, Path]) -> None:
        self.console = console
        self.files = files
        self._offsets = {name: _size(path) for name, path in files.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-follower", daemon=True)

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.poll()

    def poll(self) -> None:
        for name, path in self.files.items():
            for record in self._new_records(name, path):
                line = summarize(record, str(path))
                if line is not None:
                    self.console.say(f"  {name:<12} {line.removeprefix(name + ' ')}")

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def _new_records(self, name: str, path: Path) -> list[dict[str, Any]]:
        try:
            with path.open("rb") as handle:
                handle.seek(self._offsets[name])
                chunk = handle.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offsets[name] += len(complete)
        records = []
        for line in complete.splitlines():
            if line.startswith(b"{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
