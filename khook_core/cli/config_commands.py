"""``khook validate``, ``sources``, ``schema`` and ``sweep``: the commands that read the
configuration (and, for ``sweep``, the state store)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from khook_core.cli import options
from khook_core.settings import Settings

SCHEMAS = ("mappings", "plugins", "hooks", "budgets")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check mappings, plugins, hooks, budgets and every enabled source",
        description="Check every configuration file and load every enabled source. Exit 0 "
        "when valid, else exit 1 with one file:line: message line per problem.",
        epilog="example:\n  khook validate --config config",
    )
    options.add_config_flag(p)
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser(
        "sources",
        help="list installed sources, versions and event types",
        description="Installed sources, versions and event types. Exit 1 when a source "
        "fails to load (listed as ERROR with its error).",
        epilog="example:\n  khook sources",
    )
    options.add_config_flag(p)
    p.set_defaults(run=cmd_sources)

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of each configuration file",
        description="The JSON Schema of one configuration file, or of all of them.",
        epilog="example:\n  khook schema hooks > hooks.schema.json",
    )
    p.add_argument(
        "which", nargs="?", choices=SCHEMAS, help="one file's schema (default: all, by name)"
    )
    p.set_defaults(run=cmd_schema)

    p = sub.add_parser(
        "sweep",
        help="one sweep pass: runs owed to held-back events of groups that went quiet",
        description="One pass of the sweep function: runs owed to held-back events whose "
        "group went quiet. Exit 1 when a run failed and waits for the next pass.",
        epilog="example:\n  khook sweep --state sqlite:.khook/state.db --dry-run",
    )
    options.add_config_flag(p)
    p.add_argument("--state", metavar="URL", help="state store (default: $KHOOK_STATE)")
    p.add_argument(
        "--now",
        metavar="TIME",
        help="fix the clock (RFC 3339), e.g. after a replay with --now (default: the wall clock)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="render the runs instead of dispatching; the backlogs are still taken "
        "(default: dispatch)",
    )
    p.set_defaults(run=cmd_sweep)


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.runtime import HOOKS_DIR, disabled_sources, load_config

    config_dir = options.config_dir(args.config, settings.config_dir)
    config = load_config(
        config_dir, disabled_sources=disabled_sources(settings), check_sources=True
    )
    for note in config.notes:
        print(f"{note} (warning)", file=sys.stderr)
    for path in empty_hook_files(config_dir / HOOKS_DIR):
        print(f"{path}: no hook in this file (warning: empty)", file=sys.stderr)
    print(
        f"{config_dir}: valid: {len(config.hooks.hooks())} hooks, "
        f"{len(config.hooks.rules)} event configurations, "
        f"{len(config.mapping.entries)} mappings, sources: {', '.join(config.sources.names())}"
    )
    return 0


def empty_hook_files(directory: Path) -> list[Path]:
    """Hook files without a single document (empty, or only comments): likely a mistake."""
    from khook_core.hooks import hook_files

    if not directory.is_dir():
        return []
    empty = []
    for path in hook_files(directory):
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        if not any(doc is not None for doc in docs):
            empty.append(path)
    return empty


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.runtime import disabled_sources, load_config

    config = load_config(
        options.config_dir(args.config, settings.config_dir),
        disabled_sources=disabled_sources(settings),
    )
    registry = config.sources
    registry.load_all()  # a source that fails is listed with its error, not raised
    for name in registry.names():
        error = registry.errors.get(name)
        if error is not None:
            print(f"{name}\tERROR\t{error}")
            continue
        cls = registry.source_class(name)
        types = ", ".join(cls.event_types) or "(named by each payload; see the mapping table)"
        print(f"{name}\t{cls.version}\t{types}")
    return 1 if registry.errors else 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.hooks import HookDocument
    from khook_core.mapping import MappingFile, MappingRow
    from khook_core.sources.registry import PluginsFile
    from khook_core.storm.config import Budgets

    mappings = MappingFile.model_json_schema()
    mappings["properties"]["mappings"]["items"] = MappingRow.model_json_schema()
    schemas = {
        "mappings": mappings,
        "plugins": PluginsFile.model_json_schema(),
        "hooks": HookDocument.model_json_schema(by_alias=True),
        "budgets": Budgets.model_json_schema(by_alias=True),
    }
    out = schemas[args.which] if args.which else schemas
    print(json.dumps(out, indent=2))
    return 0


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.pipeline import sweep
    from khook_core.runtime import Clock, Runtime

    now = options.now(args.now)
    dry_run = {"dispatch": "dry-run"} if args.dry_run else {}
    settings = options.with_config_and_state(settings, args.config, args.state, **dry_run)
    runtime = Runtime.build(settings, clock=Clock(now))
    try:
        decisions = sweep(runtime=runtime)
    finally:
        runtime.close()
    for decision in decisions:
        print(json.dumps(decision.to_json(), ensure_ascii=False))
    counts = Counter(d.decision for d in decisions)
    summary = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
    print(f"swept {settings.state}: {summary or 'nothing held'}", file=sys.stderr)
    return 1 if any(d.retryable for d in decisions) else 0
