"""Local TCP ports: one fixed block, the same every run, so URLs stay put between restarts.

The block starts at ``--base-port`` (``KHOOK_BASE_PORT``, default 8780): Pub/Sub at the base,
the demo agent at +1, the forwarder's probes at +2, the functions from +10 in name order. It
sits clear of the ports the deployed pieces document (8080 for the forwarder's probes, 8083 for
kagent, 8085 for a hand-started Pub/Sub emulator), so a port-forward or emulator of one's own
keeps working beside ``khook up``.

A port counts as taken only when something listens on it: the check binds with
``SO_REUSEADDR``, as the servers themselves do, so the TIME-WAIT connections a stack leaves
behind when it stops do not move the next run. A port that is really taken is replaced by one
the kernel picks, and the holder is named (pid and command line, when this user may see them).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_BASE_PORT: Final = 8780
BASE_PORT_VARIABLE: Final = "KHOOK_BASE_PORT"
"""The environment's ``--base-port`` (local only: nothing deployed reads it)."""
PUBSUB_OFFSET: Final = 0
AGENT_OFFSET: Final = 1
FORWARDER_OFFSET: Final = 2
FIRST_FUNCTION_OFFSET: Final = 10
BLOCK_SIZE: Final = 30
"""Room for 20 functions after the fixed parts."""
LISTEN: Final = "0A"
"""The LISTEN state in ``/proc/net/tcp``."""


def free_port() -> int:
    """Any free port of 127.0.0.1 (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (connections in TIME-WAIT do not
    count: the servers set ``SO_REUSEADDR`` too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def holder(port: int, proc: Path = Path("/proc")) -> str:
    """Who listens on ``port``: ``pid 123 (python3 -m http.server)``, or a vaguer phrase when
    the process cannot be seen (another user's, or not Linux)."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return "another process"
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
            if not any(os.readlink(fd) in inodes for fd in fds):
                continue
            argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        command = " ".join(a.decode(errors="replace") for a in argv if a)[:80]
        return f"pid {pid_dir.name} ({command})"
    return "a process of another user"


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == LISTEN
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(f"socket:[{fields[9]}]")
    return inodes


@dataclass(frozen=True)
class Moved:
    """A preferred port that was taken, and the one used instead."""

    what: str
    preferred: int
    used: int
    holder: str

    def __str__(self) -> str:
        return (
            f"port {self.preferred} ({self.what}) is taken by {self.holder}; "
            f"using {self.used} instead"
        )


class PortPlan:
    """Hands out the block's ports: each part's own when free, else any free one (noted)."""

    def __init__(self, base: int = DEFAULT_BASE_PORT) -> None:
        self.base = base
        self.moved: list[Moved] = []
        self._claimed: set[int] = set(range(base, base + BLOCK_SIZE))

    def pubsub(self) -> int:
        return self.claim(self.base + PUBSUB_OFFSET, "Pub/Sub")

    def agent(self) -> int:
        return self.claim(self.base + AGENT_OFFSET, "demo agent")

    def forwarder(self) -> int:
        return self.claim(self.base + FORWARDER_OFFSET, "forwarder probes")

    def function(self, index: int, name: str) -> int:
        return self.claim(self.base + FIRST_FUNCTION_OFFSET + index, f"function {name}")

    def claim(self, preferred: int, what: str) -> int:
        """``preferred`` if nothing listens there, else a free port outside the block."""
        if is_free(preferred):
            return preferred
        port = free_port()
        while port in self._claimed:
            port = free_port()
        self._claimed.add(port)
        self.moved.append(Moved(what, preferred, port, holder(preferred)))
        return port
