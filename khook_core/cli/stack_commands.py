"""``khook up`` and ``khook send``: the local stack and feeding payloads to it.

The stack itself is the ``khook_local`` package, imported only when one of these commands runs:
building the parser (every ``khook`` command does) must not need it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from khook_core.cli import options
from khook_core.settings import Settings

BASE_PORT_HELP = "first port of the block the stack uses (default: $KHOOK_BASE_PORT, else 8780)"
"""Written out rather than built from ``khook_local.ports``, which only ``up`` may import; a
test holds the two together."""


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="run the whole system on this machine until Ctrl-C",
        description="Every function, Pub/Sub (the emulator or an in-process bus), SQLite "
        "state, a demo A2A agent and, if a cluster answers, the forwarder; until Ctrl-C.",
        epilog="example:\n  khook up --config config --base-port 9700",
    )
    options.add_config_flag(p)
    options.add_state_dir_flag(
        p, "state, logs, prompts, dead letters and stack.json (default: .khook)"
    )
    p.add_argument("--base-port", type=int, metavar="PORT", help=BASE_PORT_HELP)
    p.add_argument(
        "--bus",
        choices=["auto", "emulator", "memory"],
        default="auto",
        help="Pub/Sub: the emulator when installed (auto), or force one (default: auto)",
    )
    p.add_argument(
        "--no-forwarder",
        dest="forwarder",
        action="store_false",
        help="do not run khook-forwarder even when a cluster is reachable (default: run it)",
    )
    p.add_argument(
        "--sweep-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="tick the sweep function this often, as Cloud Scheduler does (0: never; default 60)",
    )
    p.set_defaults(run=cmd_up)

    p = sub.add_parser(
        "send",
        help="send payload files to the stack `khook up` runs",
        description="Send payload files through the running stack, one request or Pub/Sub "
        "message per payload; exit 1 when one was not accepted.",
        epilog="example:\n  khook send --shift-to-now kubernetes config/samples/kubernetes/*",
    )
    p.add_argument("source", help="function to feed: kubernetes, alertmanager, webhook, ...")
    p.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="one JSON document, or JSON lines (one payload a line)",
    )
    options.add_state_dir_flag(p, "where the running stack keeps stack.json (default: .khook)")
    p.add_argument(
        "--attribute",
        "-a",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Pub/Sub attribute (HTTP header for HTTP sources); repeatable (default: none)",
    )
    p.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move RFC 3339 timestamps so the newest of each file is now (default: as recorded)",
    )
    p.add_argument("--path", default="/", help="request path for HTTP sources (default: /)")
    p.set_defaults(run=cmd_send)


def base_port(flag_value: int | None, settings: Settings) -> int:
    """``--base-port``, else ``KHOOK_BASE_PORT``, else the default; the block must fit."""
    from khook_local.ports import BASE_PORT_VARIABLE, BLOCK_SIZE, DEFAULT_BASE_PORT

    named, raw = "--base-port", str(flag_value)
    if flag_value is None:
        named, raw = BASE_PORT_VARIABLE, settings.environ.get(BASE_PORT_VARIABLE, "")
        if not raw:
            return DEFAULT_BASE_PORT
    try:
        port = int(raw)
    except ValueError:
        raise options.UsageError(f"{named} {raw}: expected a port number") from None
    if not 1024 <= port <= 65535 - BLOCK_SIZE:
        raise options.UsageError(
            f"{named} {port}: expected a port from 1024 to {65535 - BLOCK_SIZE} "
            f"(the stack uses {BLOCK_SIZE} ports from there)"
        )
    return port


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from khook_local.stack import UpOptions, run_up

    return run_up(
        UpOptions(
            state_dir=args.state_dir,
            config_dir=options.config_dir(args.config, settings.config_dir),
            bus=args.bus,
            forwarder=args.forwarder,
            sweep_every=args.sweep_every,
            base_port=base_port(args.base_port, settings),
        )
    )


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from khook_local.send import SendError, run_send

    try:
        return run_send(
            args.source,
            args.files,
            state_dir=args.state_dir,
            attributes=args.attribute,
            shift=args.shift_to_now,
            path=args.path,
            out=sys.stdout,
        )
    except SendError as exc:
        print(f"khook send: {exc}", file=sys.stderr)
        return exc.status
