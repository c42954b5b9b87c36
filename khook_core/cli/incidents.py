"""``khook incidents``: the incidents correlation opened, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Final

from khook_core.cli import options
from khook_core.settings import Settings
from khook_core.state.base import Incident
from khook_core.timeparse import format_time

COLUMNS: Final = ("OPENED", "STATE", "WORKLOAD", "EVENTS", "FOLLOW-UPS", "HOOK", "INCIDENT")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "incidents",
        help="list the incidents correlation opened (one per workload and quiet period)",
        description="Incidents of the configured state store, newest first: each is one agent "
        "run and one conversation (its id is the A2A contextId).",
        epilog="example:\n  khook incidents --open --workload shop/Deployment/checkout",
    )
    p.add_argument("--open", action="store_true", help="only incidents still open")
    p.add_argument(
        "--workload", metavar="NS/KIND/NAME", help="only this workload (default: every workload)"
    )
    p.add_argument("--limit", type=int, default=50, help="at most this many rows (default: 50)")
    p.add_argument(
        "--state",
        metavar="URL",
        help="state store: sqlite:PATH or firestore (default: $KHOOK_STATE)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line (default: a table)"
    )
    p.set_defaults(run=cmd_incidents)


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_incident_store

    workload = args.workload
    if workload is not None and (len(workload.split("/")) != 3 or not all(workload.split("/"))):
        print(
            f"--workload {workload!r}: expected NAMESPACE/KIND/NAME (shop/Deployment/checkout)",
            file=sys.stderr,
        )
        return 2
    state = options.state_url(args.state, settings.state, must_exist=True)
    store = open_incident_store(state)
    try:
        rows = store.incidents(open_only=args.open, workload=workload, limit=args.limit)
    finally:
        store.close()
    if args.json:
        for incident in rows:
            print(json.dumps(to_json(incident)))
        return 0
    if not rows:
        print(f"no {'open ' if args.open else ''}incidents ({state})", file=sys.stderr)
        return 0
    print(table(rows))
    return 0


def to_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "workload": incident.workload,
        "state": state_of(incident),
        "opened_at": incident.opened_at.isoformat(),
        "last_event_at": incident.last_event_at.isoformat(),
        "closed_at": None if incident.closed_at is None else incident.closed_at.isoformat(),
        "hook": incident.hook,
        "agent": incident.agent,
        "events": incident.events,
        "follow_ups": incident.follow_ups,
        "pending": len(incident.pending),
    }


def state_of(incident: Incident) -> str:
    return "open" if incident.open else f"closed:{incident.close_reason}"


def table(rows: Sequence[Incident]) -> str:
    cells = [COLUMNS] + [
        (
            format_time(i.opened_at),
            state_of(i),
            i.workload,
            str(i.events),
            str(i.follow_ups),
            i.hook,
            i.id,
        )
        for i in rows
    ]
    widths = [max(len(row[n]) for row in cells) for n in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in cells
    )
