"""A small HTTP server on 127.0.0.1, served from a daemon thread: the demo agent and the
in-process bus are both one of these."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, Generic, TypeVar

SHUTDOWN_POLL_S: Final = 0.05
"""How often ``serve_forever`` looks for a shutdown request: stopping takes at most this."""

OwnerT = TypeVar("OwnerT")


class OwnedServer(ThreadingHTTPServer, Generic[OwnerT]):
    """A threading HTTP server whose handlers reach the object serving through ``owner``."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], owner: OwnerT) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.owner = owner


class LoopbackServer(Generic[OwnerT]):
    """Start, address and stop one ``OwnedServer``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: OwnerT, name: str) -> None:
        self._handler, self._owner, self._name = handler, owner, name
        self._server: OwnedServer[OwnerT] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    def start(self, port: int = 0) -> None:
        self._server = OwnedServer(port, self._handler, self._owner)
        threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name=self._name, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
