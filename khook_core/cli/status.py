"""``khook status``: one screen on the running stack (or the configured state store).

It reads, never writes: a state file that does not exist yet is reported as empty, and the
configuration is summarised even when it is invalid (then ``khook validate`` says why).
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from khook_core.cli import options, silences
from khook_core.settings import Settings
from khook_core.state.base import AuditLog, BacklogStore, Firing, LimitStore, StateStore
from khook_core.timeparse import format_time

RECENT: Final = "1h"
"""The default window of "recent firings"."""
SCAN_LIMIT: Final = 1000
"""Firings and backlogs read at most: enough for a summary, bounded on a busy store."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="summarise the local stack or the configured state",
        description="The running local stack (if any), the hooks loaded, recent firings, "
        "held-back backlogs, circuit state per agent and the last error per source.",
        epilog="example:\n  khook status --since 24h",
    )
    options.add_config_flag(p)
    p.add_argument(
        "--state",
        metavar="URL",
        help="state store (default: the running local stack's, else $KHOOK_STATE)",
    )
    options.add_state_dir_flag(p, "where a local stack keeps stack.json (default: .khook)")
    p.add_argument(
        "--since", default=RECENT, metavar="WHEN", help=f"what counts as recent (default: {RECENT})"
    )
    p.set_defaults(run=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from khook_local import stackfile

    since = options.since(args.since)
    assert since is not None
    say = _printer()
    info = stackfile.read(args.state_dir) if args.state_dir.is_dir() else None
    running = info is not None and stackfile.is_running(info)
    if info is not None and running:
        say(
            "stack",
            f"running from {args.state_dir}/ (pid {info.pid}, started {info.started}"
            f"{'' if info.ready else ', still starting'}; {len(info.functions)} functions)",
        )
        default_state, default_config = (
            f"sqlite:{Path(info.state_dir) / 'state.db'}",
            Path(info.config_dir),
        )
    else:
        say("stack", f"not running from {args.state_dir}/ (start one with `khook up`)")
        default_state, default_config = settings.state, settings.config_dir
    config_dir = args.config or default_config
    rules = _config_line(say, config_dir)
    url = args.state or default_state
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:") or options.DEFAULT_SQLITE_PATH)
        if not path.is_file():
            why = "a directory, not a database file" if path.is_dir() else "no such file"
            say("state", f"{url}: nothing recorded yet ({why})")
            return 0
    url = options.state_url(args.state, default_state)
    from khook_core.state import open_store

    store = open_store(url)
    try:
        say("state", url)
        _state_lines(say, store, rules, since, args.since)
    finally:
        store.close()
    silences.status_lines(say, url, config_dir, datetime.now().astimezone())
    return 0


def _printer() -> Any:
    def say(what: str, text: str) -> None:
        print(f"{what:<10} {text}")

    return say


def _config_line(say: Any, config_dir: Path) -> list[Any]:
    """Say what the configuration holds; its hook rules (none when it cannot be loaded)."""
    from khook_core.errors import ConfigError
    from khook_core.runtime import load_config
    from khook_local.stack import show

    if not config_dir.is_dir():
        say("config", f"{config_dir}: the directory does not exist")
        return []
    try:
        config = load_config(config_dir)
    except ConfigError as exc:
        say(
            "config",
            f"{config_dir}: invalid, {len(exc.problems)} problems "
            f"(khook validate --config {config_dir})",
        )
        return []
    hooks = config.hooks.hooks()
    say(
        "hooks",
        f"{len(hooks)} loaded from {show(config_dir)}/ ({len(config.hooks.rules)} event "
        f"configurations): {', '.join(hooks) or 'none'}",
    )
    return list(config.hooks.rules)


def _state_lines(
    say: Any, store: StateStore, rules: list[Any], since: datetime, window: str
) -> None:
    """The state part of the screen; each line reads only the contract it needs."""
    firings = _firing_lines(say, store, since, window)
    _backlog_line(say, store)
    _circuit_line(say, store, rules)
    _error_lines(say, firings, window)


def _firing_lines(say: Any, log: AuditLog, since: datetime, window: str) -> list[Firing]:
    """Recent firings counted by outcome; the firings read, newest first."""
    firings = log.firings(since=since, limit=SCAN_LIMIT)
    counts = Counter(f.outcome for f in firings)
    tally = ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()) or "none"
    newest = f" (newest {format_time(firings[0].at)})" if firings else ""
    say("firings", f"last {window}: {tally}{newest}")
    return firings


def _backlog_line(say: Any, backlogs: BacklogStore) -> None:
    held = backlogs.backlog_keys(limit=SCAN_LIMIT)
    say(
        "held back",
        f"{len(held)} backlog{'s' * (len(held) != 1)} waiting for the sweep"
        if held
        else "nothing waiting for the sweep",
    )


def _circuit_line(say: Any, limits: LimitStore, rules: list[Any]) -> None:
    from khook_core.storm import keys

    now = datetime.now().astimezone()
    states: dict[str, str] = {}
    for rule in rules:
        states.setdefault(
            rule.target.label(), limits.circuit_state(key=keys.circuit(rule), now=now)
        )
    unhealthy = {target: s for target, s in states.items() if s != "closed"}
    if not states:
        say("circuits", "no agents configured")
    elif unhealthy:
        say(
            "circuits",
            ", ".join(f"{t} {s}" for t, s in sorted(unhealthy.items()))
            + f"; {len(states) - len(unhealthy)} closed",
        )
    else:
        say("circuits", f"all {len(states)} closed")


def _error_lines(say: Any, firings: list[Firing], window: str) -> None:
    errors = _last_errors(firings)
    if not errors:
        say("errors", f"none in the last {window}")
    for source, firing in sorted(errors.items()):
        say(
            "errors",
            f"{source}: {format_time(firing.at)} {firing.outcome} {firing.hook}: "
            f"{firing.error.splitlines()[0][:160]}",
        )


def _last_errors(firings: list[Firing]) -> dict[str, Firing]:
    """The newest firing with an error, per source (firings come newest first)."""
    last: dict[str, Firing] = {}
    for firing in firings:
        if firing.error and firing.source not in last:
            last[firing.source] = firing
    return last
