"""What several commands share: usage errors, the ``--config`` and ``--state-dir`` flags, and the
checks of ``--config``, ``--state`` and ``--since``, each naming the flag (or the variable) the
value came from."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from khook_core.errors import InvalidEventError
from khook_core.settings import Settings
from khook_core.timeparse import parse_duration, parse_time

EXIT_USAGE: Final = 2
"""A command line that cannot work (argparse's own status for a bad argument)."""
DEFAULT_SQLITE_PATH: Final = ".khook/state.db"
"""What ``sqlite:`` without a path means (the state store's own default)."""
CONFIG_HELP: Final = "config directory (default: $KHOOK_CONFIG_DIR)"
STATE_DIR: Final = Path(".khook")
"""Where ``khook up`` keeps state, logs and stack.json, and where other commands look for it."""
SINCE_FORMS: Final = (
    "a duration back from now (30m, 2h, 90s) or an RFC 3339 time (2026-01-05T10:00:00Z)"
)


class UsageError(Exception):
    """A command line that cannot work: printed as one line, exit 2."""


def add_config_flag(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:
    """``--config DIR``: the configuration directory (None when not given)."""
    parser.add_argument("--config", type=Path, metavar="DIR", help=help)


def add_state_dir_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--state-dir DIR``: the local stack's directory (default ``.khook``)."""
    parser.add_argument("--state-dir", type=Path, metavar="DIR", default=STATE_DIR, help=help)


def source_of(flag: str, value: object, variable: str) -> str:
    """How to name a setting in a message: the flag the user typed, else the variable."""
    return flag if value is not None else variable


def config_dir(flag_value: Path | None, default: Path) -> Path:
    """The configuration directory, which must exist (a missing one is a usage error)."""
    path = flag_value or default
    named = source_of("--config", flag_value, "KHOOK_CONFIG_DIR")
    if not path.exists():
        raise UsageError(f"{named} {path}: the directory does not exist")
    if not path.is_dir():
        raise UsageError(f"{named} {path}: not a directory")
    return path


def state_url(flag_value: str | None, default: str, *, must_exist: bool = False) -> str:
    """A state store URL that can be opened without side effects.

    ``must_exist`` is for read-only commands: an SQLite file that is not there holds nothing,
    and opening it would create it. No command creates a missing directory for the file.
    """
    url = flag_value or default
    named = source_of("--state", flag_value, "KHOOK_STATE")
    if url == "memory" or url == "firestore" or url.startswith("firestore:"):
        return url
    if not url.startswith("sqlite:"):
        raise UsageError(
            f"{named} {url}: unknown state store (expected memory, sqlite:PATH or firestore)"
        )
    path = Path(url.removeprefix("sqlite:") or DEFAULT_SQLITE_PATH)
    if must_exist and not path.is_file():
        why = "is a directory" if path.is_dir() else "does not exist (nothing recorded there yet)"
        raise UsageError(f"{named} {url}: {path} {why}")
    if not path.parent.is_dir():
        raise UsageError(f"{named} {url}: the directory {path.parent} does not exist")
    return url


def with_config_and_state(
    settings: Settings, config: Path | None, state: str | None, **changes: Any
) -> Settings:
    """``settings`` with ``--config`` and ``--state`` applied (checked in that order) and
    ``changes``, for the commands that build a runtime."""
    return settings.model_copy(
        update={
            "config_dir": config_dir(config, settings.config_dir),
            "state": state_url(state, settings.state),
            **changes,
        }
    )


def since(value: str | None) -> datetime | None:
    """``--since``: a duration back from now or an RFC 3339 time."""
    if value is None:
        return None
    try:
        return datetime.now().astimezone() - parse_duration(value)
    except ValueError:
        pass
    try:
        return parse_time(value, "--since")
    except InvalidEventError:
        raise UsageError(f"--since {value}: expected {SINCE_FORMS}") from None


def now(value: str | None) -> datetime | None:
    """``--now``: an RFC 3339 time (None: the wall clock)."""
    if value is None:
        return None
    try:
        return parse_time(value, "--now")
    except InvalidEventError:
        raise UsageError(
            f"--now {value}: expected an RFC 3339 time (2026-01-05T10:35:00Z)"
        ) from None


def hook_name(value: str | None, known: list[str] | None) -> str | None:
    """``--hook NS/NAME``: well formed, and one of ``known`` when the hooks could be loaded."""
    if value is None:
        return None
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise UsageError(f"--hook {value}: expected NAMESPACE/NAME, e.g. default/pod-health")
    if known is not None and value not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise UsageError(f"--hook {value}: no such hook (loaded: {listed})")
    return value
