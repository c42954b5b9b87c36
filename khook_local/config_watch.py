"""``khook up`` applies edits of ``config/`` while it runs.

A watchfiles thread wakes on every change under the config directory (debounced by the
library), validates the whole directory with the one loader and publishes it as the next
snapshot in the stack's SQLite state file; the functions, started with a short refresh
interval, load it on their next event. The console says what changed
(``config reloaded: 8 hooks (+1 −0), 14 event configurations``) or lists the problems and
keeps the previous configuration (nothing is published).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from khook_core.errors import ConfigError, TransientError
from khook_core.liveconfig import publishing, snapshot
from khook_core.state import open_config_store
from khook_local.console import Console

logger = logging.getLogger(__name__)

FUNCTION_REFRESH_S: Final = "0.5"
"""The functions' ``KHOOK_CONFIG_REFRESH`` under ``khook up``: with the watcher's debounce
(watchfiles waits for 50 ms of quiet) an edit applies well within two seconds."""
ORIGIN: Final = "files"
WAKE_MS: Final = 250
"""The watch thread wakes this often without a change: the first wake says the watch is in
place, and every wake checks for a stop."""
WATCH_READY_S: Final = 5.0


class ConfigWatcher:
    """Publishes ``config_dir`` to the stack's store at start and after every valid edit."""

    def __init__(self, config_dir: Path, state_url: str, console: Console) -> None:
        self.config_dir = config_dir
        self.state_url = state_url
        self.console = console
        self._hooks: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watching = threading.Event()

    def publish_initial(self) -> int:
        """Publish the files as they are now, so functions never load a snapshot a previous
        run left in the state file. Returns the live version.

        Raises:
            ConfigError: the configuration is invalid (the stack does not start).
        """
        published = self._publish()
        self._hooks = set(published.config.hooks.hooks())
        return published.version

    def start(self) -> ConfigWatcher:
        """Start watching; returns once the watch is in place, so no later edit is missed."""
        self._thread = threading.Thread(target=self._watch, name="config-watch", daemon=True)
        self._thread.start()
        self._watching.wait(WATCH_READY_S)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        import watchfiles

        for changes in watchfiles.watch(
            self.config_dir,
            stop_event=self._stop,
            raise_interrupt=False,
            yield_on_timeout=True,
            rust_timeout=WAKE_MS,
        ):
            if not self._watching.is_set():
                # The watch is in place: apply what changed between the first publish and now.
                self._watching.set()
                self.apply()
            elif changes:
                self.apply()

    def apply(self) -> None:
        """Validate and publish the directory once; say what happened on the console."""
        try:
            published = self._publish()
        except ConfigError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            self.console.say(
                f"config: {len(exc.problems)} problems:\n{problems}\n"
                "  kept the previous configuration"
            )
            return
        except (TransientError, OSError) as exc:
            self.console.say(f"config: not applied ({exc}); kept the previous configuration")
            return
        if not published.changed:
            return
        config = published.config
        hooks = set(config.hooks.hooks())
        added, removed = len(hooks - self._hooks), len(self._hooks - hooks)
        self._hooks = hooks
        self.console.say(
            f"config reloaded: {len(hooks)} hooks (+{added} −{removed}), "
            f"{len(config.hooks.rules)} event configurations (version {published.version})"
        )

    def _publish(self) -> publishing.Published:
        files = snapshot.files_of(self.config_dir)
        store = open_config_store(self.state_url)
        try:
            return publishing.publish_files(
                files,
                store,
                origin=ORIGIN,
                label=str(self.config_dir),
                now=datetime.now(UTC),
                # As the stack starts: a source that fails to load fails only its own requests.
                check_sources=False,
            )
        finally:
            store.close()
