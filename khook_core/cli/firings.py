"""``khook firings``: the audit trail as a table a person reads, or JSON lines for a script."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from khook_core import audit
from khook_core.cli import options
from khook_core.settings import Settings
from khook_core.state.base import AuditLog, Firing
from khook_core.timeparse import format_time

COLUMNS: Final = (
    "TIME",
    "OUTCOME",
    "HOOK",
    "EVENT TYPE",
    "RESOURCE",
    "AGENT",
    "TASK",
    "STATE",
    "DETAIL",
)
ERROR_WIDTH: Final = 120
"""An error or finding longer than this is cut on a table row (``--json`` has it whole)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "firings",
        help="query the audit trail of the configured state store",
        description="What fired, when, to which agent and how it ended, newest first: the "
        "agent task's state and the first line of its finding once the task has ended.",
        epilog="example:\n  khook firings --since 2h --hook default/pod-health",
    )
    p.add_argument("--hook", metavar="NS/NAME", help="only this hook (default: every hook)")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="a duration back from now (30m, 2h) or an RFC 3339 time (default: no limit)",
    )
    p.add_argument("--limit", type=int, default=50, help="at most this many rows (default: 50)")
    p.add_argument(
        "--state",
        metavar="URL",
        help="state store: sqlite:PATH or firestore (default: $KHOOK_STATE)",
    )
    options.add_config_flag(
        p, "config directory whose hooks --hook may name (default: $KHOOK_CONFIG_DIR)"
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line (default: a table)"
    )
    p.set_defaults(run=cmd_firings)


def cmd_firings(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_store

    hook = options.hook_name(args.hook, None)
    since = options.since(args.since)
    state = options.state_url(args.state, settings.state, must_exist=True)
    store = open_store(state)
    try:
        rows = newest(store, hook=hook, since=since, limit=args.limit)
    finally:
        store.close()
    if hook is not None and not rows:
        options.hook_name(hook, configured_hooks(args.config or settings.config_dir))
    if args.json:
        for f in rows:
            print(json.dumps(audit.to_json(f)))
        return 0
    if not rows:
        which = f" of hook {hook}" if hook else ""
        when = ""
        if args.since:
            when = (
                f" in the last {args.since}" if _is_duration(args.since) else f" since {args.since}"
            )
        print(f"no firings{which}{when} ({state})", file=sys.stderr)
        return 0
    print(table(rows))
    return 0


def newest(log: AuditLog, *, hook: str | None, since: datetime | None, limit: int) -> list[Firing]:
    """What ``khook firings`` shows: it reads the audit log and nothing else of the store."""
    return log.firings(hook=hook, since=since, limit=limit)


def configured_hooks(config_dir: Path) -> list[str] | None:
    """The hooks of the configuration, or None when it cannot be loaded (then any is taken)."""
    from khook_core.errors import KhookError
    from khook_core.runtime import load_config

    try:
        return load_config(config_dir).hooks.hooks()
    except (KhookError, OSError):
        return None


def table(rows: Sequence[Firing]) -> str:
    """A header and one aligned row per firing; the last column is not padded."""
    cells = [COLUMNS] + [_cells(f) for f in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in cells
    )


def _cells(f: Firing) -> tuple[str, ...]:
    return (
        format_time(f.at),
        f.outcome,
        f.hook,
        f.event_type,
        f.resource.lstrip("/"),
        f.agent,
        f.task_id or "-",
        f.task_state or "-",
        detail(f),
    )


def detail(f: Firing) -> str:
    """The error of a failure, else the first line of the task's finding, on one line."""
    text = f.error or (f.finding.splitlines() or [""])[0]
    text = " ".join(text.split())
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"


def _is_duration(value: str) -> bool:
    from khook_core.timeparse import parse_duration

    try:
        parse_duration(value)
    except ValueError:
        return False
    return True
