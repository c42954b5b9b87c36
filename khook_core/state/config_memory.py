"""In-memory ``ConfigStore``: the reference implementation, shared by the threads of a process."""

from __future__ import annotations

import threading
from datetime import datetime

from khook_core.state.base import ConfigSnapshot


class MemoryConfigStore:
    """The current snapshot in a variable, behind a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: ConfigSnapshot | None = None

    def config_version(self) -> int:
        current = self._current
        return 0 if current is None else current.version

    def read_config(self) -> ConfigSnapshot | None:
        return self._current

    def publish_config(
        self,
        *,
        files: dict[str, str],
        origin: str,
        hooks: int,
        digest: str,
        now: datetime,
        expect: int | None = None,
    ) -> int | None:
        with self._lock:
            version = self.config_version()
            if expect is not None and version != expect:
                return None
            self._current = ConfigSnapshot(
                version=version + 1,
                origin=origin,
                published_at=now,
                files=dict(files),
                hooks=hooks,
                digest=digest,
            )
            return version + 1

    def close(self) -> None:
        """Nothing to release."""
