"""``khook silence add|list|expire``: mute matching events for a while, without a redeploy.

A silence is written to the state store every function reads (``SilenceStore``), so every
function and instance honours it within its refresh interval (``KHOOK_CONFIG_REFRESH``). Its
matcher is compiled like a hook's ``when:`` before anything is written: a typo exits 2 naming
the field. Adding and expiring are recorded in the audit trail (``khook firings``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from khook_core import conditions, timeparse
from khook_core.cli import options
from khook_core.errors import InvalidEventError
from khook_core.settings import Settings
from khook_core.state.base import DedupKey, Firing, SilenceRecord

if TYPE_CHECKING:
    from khook_core.state.base import AuditLog

CREATED: Final = "silence:created"
EXPIRED: Final = "silence:expired"
"""Audit outcomes of ``add`` and ``expire`` (the silence's id is the record's event id)."""
LIST_LIMIT: Final = 500


def add_parsers(sub: Any) -> None:
    silence = sub.add_parser(
        "silence",
        help="mute matching events for a while (add, list, expire silences)",
        description="Silences mute the events their matcher selects: each match is answered "
        "suppressed:silenced, nothing is claimed, and what was held back is summarised in "
        "one run per hook when the silence ends (unless --drop).",
        epilog="examples:\n"
        "  khook silence add --matcher 'event.resource.namespace == \"payments\"' --for 2h "
        "--comment 'db migration'\n  khook silence list\n  khook silence expire 3f2a9c1e0b7d",
    )
    actions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "add",
        help="add a silence",
        description="Add a silence. At least one of --matcher, --hook and --source; the "
        "matcher is a CEL condition over `event`, checked like a hook's when:.",
        epilog="example:\n  khook silence add --matcher 'event.resource.namespace == "
        '"payments"\' --for 2h --comment "db migration"',
    )
    p.add_argument("--matcher", default="", help="CEL condition over event (default: any event)")
    p.add_argument(
        "--hook",
        metavar="NS/NAME",
        default="",
        help="only this hook, one the config directory loads (default: every hook)",
    )
    p.add_argument("--source", default="", help="only this source (default: every source)")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--for", dest="duration", metavar="DURATION", help="how long (2h, 30m)")
    length.add_argument("--until", metavar="TIME", help="when it ends (RFC 3339)")
    p.add_argument("--start", metavar="TIME", help="when it starts (RFC 3339; default: now)")
    p.add_argument("--comment", default="", help="why (shown in list, status, the audit trail)")
    p.add_argument("--author", help="who (default: the user name)")
    p.add_argument("--id", dest="silence_id", help="the silence id (default: derived from it)")
    p.add_argument(
        "--drop",
        action="store_true",
        help="forget what it holds back instead of one summary run per hook at its end",
    )
    options.add_config_flag(
        p, "config directory whose hooks --hook must name (default: $KHOOK_CONFIG_DIR)"
    )
    _common(p)
    p.set_defaults(run=cmd_add)
    p = actions.add_parser(
        "list",
        help="list silences in force or to come",
        description="Silences not yet ended (with --all, ended ones too), latest end first.",
        epilog="example:\n  khook silence list --json",
    )
    p.add_argument("--all", action="store_true", help="also silences that have ended")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _common(p)
    p.set_defaults(run=cmd_list)
    p = actions.add_parser(
        "expire",
        help="end a silence now",
        description="End a silence now; what it held back gets its run at the next sweep.",
        epilog="example:\n  khook silence expire 3f2a9c1e0b7d",
    )
    p.add_argument("silence_id", metavar="ID", help="the silence's id (see `khook silence list`)")
    p.add_argument("--author", help="who (default: the user name)")
    _common(p)
    p.set_defaults(run=cmd_expire)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", metavar="URL", help="state store (default: $KHOOK_STATE)")
    p.add_argument("--now", metavar="TIME", help=argparse.SUPPRESS)  # tests fix the clock


def _now(args: argparse.Namespace) -> datetime:
    from khook_core.event import utcnow

    return options.now(args.now) or utcnow()


def author_of(value: str | None) -> str:
    """``--author``, else the login name, else ``unknown``."""
    if value:
        return value
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def build_silence(
    args: argparse.Namespace, now: datetime, known_hooks: list[str] | None = None
) -> SilenceRecord:
    """The silence ``khook silence add`` describes, validated (``known_hooks``: the hooks
    ``--hook`` must name; None when the configuration could not be loaded).

    Raises:
        UsageError: naming the flag (a matcher that does not compile, a bad time).
    """
    if not (args.matcher or args.hook or args.source):
        raise options.UsageError("give at least one of --matcher, --hook and --source")
    if args.matcher:
        from khook_core.silencing.matchers import compile_matcher

        try:
            compile_matcher(args.matcher)
        except conditions.ConditionSyntaxError as exc:
            raise options.UsageError(f"--matcher: {exc}") from None
    hook = (options.hook_name(args.hook, known_hooks) or "") if args.hook else ""
    start = _time(args.start, "--start") or now
    if args.duration is not None:
        try:
            length = timeparse.parse_duration(args.duration)
        except ValueError:
            raise options.UsageError(
                f"--for {args.duration}: expected a duration ({timeparse.DURATION_FORMS})"
            ) from None
        end = start + length
    else:
        end = _time(args.until, "--until") or start
    if end <= start or end <= now:
        raise options.UsageError("the silence would end before it starts (or in the past)")
    silence_id = args.silence_id or _derived_id(args.matcher, hook, args.source, start, end)
    if "|" in silence_id or not silence_id.strip():
        raise options.UsageError(f"--id {silence_id!r}: must be non-empty, without '|'")
    return SilenceRecord(
        id=silence_id,
        matcher=args.matcher,
        author=author_of(args.author),
        comment=args.comment,
        starts_at=start,
        ends_at=end,
        created_at=now,
        hook=hook,
        source=args.source,
        drop=args.drop,
    )


def _time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return timeparse.parse_time(value, flag)
    except InvalidEventError:
        raise options.UsageError(
            f"{flag} {value}: expected an RFC 3339 time (2026-01-05T10:35:00Z)"
        ) from None


def _derived_id(matcher: str, hook: str, source: str, start: datetime, end: datetime) -> str:
    """The same silence asked for twice in the same second (a retried command, two people
    running one runbook) is one silence."""
    from khook_core.storm.keys import digest

    return digest(matcher, hook, source, str(int(start.timestamp())), str(int(end.timestamp())))[
        :12
    ]


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.cli.firings import configured_hooks
    from khook_core.state import open_silence_store, open_store

    now = _now(args)
    known = configured_hooks(args.config or settings.config_dir) if args.hook else None
    silence = build_silence(args, now, known)
    url = options.state_url(args.state, settings.state)
    store = open_silence_store(url, project=settings.firestore.project_id())
    try:
        stored, created = store.add_silence(silence=silence)
    finally:
        store.close()
    if created:
        audit = open_store(url, project=settings.firestore.project_id())
        try:
            record(audit, stored, CREATED, now, stored.author)
        finally:
            audit.close()
    print(stored.id if created else f"{stored.id} (already there)")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_silence_store

    now = _now(args)
    url = options.state_url(args.state, settings.state, must_exist=True)
    store = open_silence_store(url, project=settings.firestore.project_id())
    try:
        found = store.silences(now=now, include_expired=args.all, limit=LIST_LIMIT)
    finally:
        store.close()
    if args.json:
        for silence in found:
            print(json.dumps(to_json(silence, now), sort_keys=True))
        return 0
    if not found:
        print("no silences" + ("" if args.all else " in force or to come"))
        return 0
    for silence in found:
        print(describe(silence, now))
    return 0


def cmd_expire(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_silence_store, open_store

    now = _now(args)
    by = author_of(args.author)
    url = options.state_url(args.state, settings.state, must_exist=True)
    store = open_silence_store(url, project=settings.firestore.project_id())
    try:
        before = store.get_silence(id=args.silence_id)
        after = store.expire_silence(id=args.silence_id, now=now, by=by)
    finally:
        store.close()
    if after is None or before is None:
        print(f"khook silence expire: no silence {args.silence_id!r}", file=sys.stderr)
        return 1
    if before.ends_at <= now:
        print(f"{after.id} had already ended at {format_at(before.ends_at)}")
        return 0
    audit = open_store(url, project=settings.firestore.project_id())
    try:
        record(audit, after, EXPIRED, now, by)
    finally:
        audit.close()
    print(f"{after.id} expired")
    return 0


def record(audit: AuditLog, silence: SilenceRecord, outcome: str, now: datetime, by: str) -> None:
    """The audit trail's record of a silence added or expired."""
    audit.record(
        Firing(
            key=DedupKey(f"silence|{silence.id}"),
            hook=silence.hook or "*",
            event_id=silence.id,
            event_type="silence",
            source=silence.source or "*",
            resource="",
            agent="",
            prompt_hash="",
            outcome=outcome,
            at=now,
            error="",
            extra={
                "author": by,
                "comment": silence.comment,
                "matcher": silence.matcher,
                "starts_at": silence.starts_at.isoformat(),
                "ends_at": silence.ends_at.isoformat(),
                "drop": str(silence.drop).lower(),
            },
        )
    )


def format_at(at: datetime) -> str:
    return timeparse.format_time(at)


def describe(silence: SilenceRecord, now: datetime) -> str:
    """One line a person reads: id, state, scope, until, author, comment."""
    state = (
        "active" if silence.active_at(now) else "pending" if silence.starts_at > now else "ended"
    )
    scope = " ".join(
        part
        for part in (
            f"matcher={silence.matcher!r}" if silence.matcher else "",
            f"hook={silence.hook}" if silence.hook else "",
            f"source={silence.source}" if silence.source else "",
            "drop" if silence.drop else "",
        )
        if part
    )
    left = silence.ends_at - now
    until = format_at(silence.ends_at)
    if state == "active" and left > timedelta(0):
        until += f" ({_minutes(left)} left)"
    by = silence.author + (f", expired by {silence.expired_by}" if silence.expired_by else "")
    note = f" — {silence.comment}" if silence.comment else ""
    return f"{silence.id}  {state:<7} until {until}  {scope}  by {by}{note}"


def _minutes(left: timedelta) -> str:
    minutes = max(1, round(left.total_seconds() / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def to_json(silence: SilenceRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matcher": silence.matcher,
        "hook": silence.hook or None,
        "source": silence.source or None,
        "author": silence.author,
        "comment": silence.comment,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_at": silence.created_at.isoformat(),
        "drop": silence.drop,
        "expired_by": silence.expired_by or None,
        "active": silence.active_at(now),
    }


def status_lines(say: Any, url: str, config_dir: Path, now: datetime) -> None:
    """``khook status``: the silences in force (or to come) and the next maintenance window."""
    from khook_core.errors import ConfigError, TransientError
    from khook_core.runtime import BUDGETS_FILE
    from khook_core.silencing.windows import compile_windows
    from khook_core.state import open_silence_store
    from khook_core.storm.config import Budgets

    try:
        store = open_silence_store(url)
        try:
            found = store.silences(now=now, include_expired=False, limit=LIST_LIMIT)
        finally:
            store.close()
    except TransientError as exc:
        say("silences", f"unreadable: {exc}")
        found = []
    else:
        if not found:
            say("silences", "none in force")
        for silence in found:
            say("silences", describe(silence, now))
    path = config_dir / BUDGETS_FILE
    try:
        windows = compile_windows(Budgets.load(path), path)
    except ConfigError:
        return  # the config line has said it is invalid
    upcoming = [o for w in windows if (o := w.next_occurrence(now)) is not None]
    if not upcoming:
        say("windows", "no maintenance windows configured")
        return
    first = min(upcoming, key=lambda o: o.start)
    state = "open now" if first.start <= now else "next"
    say(
        "windows",
        f"{first.window} {state}: {format_at(first.start)} to {format_at(first.end)}"
        f" ({len(upcoming)} configured)",
    )
