"""``.khook/stack.json``: how ``khook send`` (and a second ``khook up``) finds a running stack.

Written by ``khook up`` as soon as its first child starts (so a crashed start can be cleaned
up), again with ``ready: true`` once everything answers, and removed on a clean stop. It holds
the demo tokens of the HTTP functions, so it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from khook_local.processes import command_line, pid_alive

FILE_NAME: Final = "stack.json"


class BusInfo(BaseModel):
    kind: Literal["emulator", "memory"]
    host: str
    """``host:port`` of the REST API (``PUBSUB_EMULATOR_HOST`` for the emulator)."""
    project: str


class FunctionInfo(BaseModel):
    url: str
    signature: Literal["http", "cloudevent"]
    topic: str | None = None
    token: str | None = None
    """Demo bearer token of an HTTP function (``KHOOK_<SOURCE>_TOKEN``)."""
    hmac_secret: str | None = None
    """Demo signing key of an HTTP function (``KHOOK_<SOURCE>_HMAC_SECRET``), for endpoints
    that accept signatures only (the webhook source's ``/github``)."""


class ChildInfo(BaseModel):
    """A process group the stack started; ``marker`` is part of its command line."""

    name: str
    pid: int
    marker: str


class StackInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pid: int
    """The ``khook up`` process."""
    ready: bool = False
    started: str
    state_dir: str
    config_dir: str
    bus: BusInfo | None = None
    functions: dict[str, FunctionInfo] = Field(default_factory=dict)
    agent_url: str | None = None
    demo_agent: bool = False
    forwarder: str = ""
    """Its pid as text, or why it was skipped."""
    children: list[ChildInfo] = Field(default_factory=list)


def path_in(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def write(state_dir: Path, info: StackInfo) -> None:
    """Replace the file atomically, readable by the owner only."""
    target = path_in(state_dir)
    temp = target.with_suffix(".json.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(info.model_dump_json(indent=2))
    os.replace(temp, target)


def read(state_dir: Path) -> StackInfo | None:
    """The recorded stack, or None when there is no (readable) file."""
    try:
        return StackInfo.model_validate(json.loads(path_in(state_dir).read_text("utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


def remove(state_dir: Path) -> None:
    path_in(state_dir).unlink(missing_ok=True)


def is_running(info: StackInfo) -> bool:
    """Whether the recorded ``khook up`` is still alive (its pid, running khook)."""
    return pid_alive(info.pid) and "khook" in command_line(info.pid)


def leftovers(info: StackInfo) -> list[ChildInfo]:
    """Children of a dead stack still running (checked by command line, not pid alone)."""
    return [c for c in info.children if pid_alive(c.pid) and c.marker in command_line(c.pid)]
