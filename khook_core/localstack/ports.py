"""Local TCP ports: stable defaults when free, so URLs stay the same from run to run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Final

FIRST_FUNCTION_PORT: Final = 8081
PUBSUB_PORT: Final = 8085
"""The Google Cloud CLI's default emulator port; ``PUBSUB_EMULATOR_HOST=127.0.0.1:8085``."""
AGENT_PORT: Final = 8090
SEARCH_SPAN: Final = 50
"""How far past a preferred port to look before asking the kernel for any free one."""


def free_port() -> int:
    """Any free port of 127.0.0.1 (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound now (nothing listens there)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class PortPlan:
    """Hands out ports: the preferred one if free and unclaimed, else the next free one."""

    def __init__(self, reserved: tuple[int, ...] = ()) -> None:
        self._claimed: set[int] = set(reserved)

    def claim(self, preferred: int) -> int:
        for port in self._candidates(preferred):
            if port not in self._claimed and is_free(port):
                self._claimed.add(port)
                return port
        port = free_port()
        self._claimed.add(port)
        return port

    @staticmethod
    def _candidates(preferred: int) -> Iterator[int]:
        yield from range(preferred, min(preferred + SEARCH_SPAN, 65536))
