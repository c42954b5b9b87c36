"""``khook config push`` and ``khook config show``: the live configuration without a cluster.

``push`` validates the config directory exactly as ``khook validate`` does and publishes it
as the next snapshot, which every function loads within its refresh interval; an invalid
configuration exits 1 with every problem and publishes nothing. ``show`` prints the live
version, where it came from and how many hooks it holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from khook_core.cli import options
from khook_core.settings import Settings


def add_parsers(sub: Any) -> None:
    config = sub.add_parser(
        "config",
        help="publish or show the live configuration (the snapshot functions reload)",
        description="The live configuration: a versioned snapshot of the config directory in "
        "the state store, which every function reloads within KHOOK_CONFIG_REFRESH seconds.",
        epilog="examples:\n  khook config push --config config --state firestore\n"
        "  khook config show --state firestore",
    )
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "push",
        help="validate the config directory and publish it as the next snapshot",
        description="Validate every file as `khook validate` does, then publish the directory "
        "as the next configuration snapshot. Exit 1 with every problem, publishing nothing, "
        "when invalid; files equal to the live snapshot publish nothing and exit 0.",
        epilog="example:\n  khook validate --config config && "
        "khook config push --config config --state firestore",
    )
    options.add_config_flag(p)
    p.add_argument("--state", metavar="URL", help="state store (default: $KHOOK_STATE)")
    p.set_defaults(run=cmd_push)
    p = actions.add_parser(
        "show",
        help="print the live configuration's version, origin and hook count",
        description="The live configuration snapshot: version, origin (files, push or "
        "cluster), when it was published and how many hooks it holds. Exit 1 when nothing "
        "is published yet.",
        epilog="example:\n  khook config show --state firestore",
    )
    p.add_argument("--state", metavar="URL", help="state store (default: $KHOOK_STATE)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(run=cmd_show)


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.event import utcnow
    from khook_core.liveconfig import publishing, snapshot
    from khook_core.runtime import disabled_sources
    from khook_core.state import open_config_store

    config_dir = options.config_dir(args.config, settings.config_dir)
    url = options.state_url(args.state, settings.state)
    files = snapshot.files_of(config_dir)
    store = open_config_store(url, project=settings.firestore.project_id())
    try:
        published = publishing.publish_files(
            files,
            store,
            origin="push",
            label=str(config_dir),
            now=utcnow(),
            disabled_sources=disabled_sources(settings),
        )
    finally:
        store.close()
    config = published.config
    for note in config.notes:
        print(f"{note} (warning)", file=sys.stderr)
    what = "published" if published.changed else "unchanged, still"
    print(
        f"{url}: {what} version {published.version}: {len(config.hooks.hooks())} hooks, "
        f"{len(config.hooks.rules)} event configurations"
    )
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_config_store

    url = options.state_url(args.state, settings.state, must_exist=True)
    store = open_config_store(url, project=settings.firestore.project_id())
    try:
        current = store.read_config()
    finally:
        store.close()
    if current is None:
        print(
            f"{url}: no configuration published yet (functions use their deployed files)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "version": current.version,
                    "origin": current.origin,
                    "published_at": current.published_at.isoformat(),
                    "hooks": current.hooks,
                    "files": len(current.files),
                    "digest": current.digest,
                }
            )
        )
        return 0
    print(
        f"{url}: version {current.version} from {current.origin}, "
        f"published {current.published_at.isoformat(timespec='seconds')}, "
        f"{current.hooks} hooks in {len(current.files)} files"
    )
    return 0
