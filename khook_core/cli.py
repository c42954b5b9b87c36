"""The ``khook`` command: validate configuration, replay payloads, inspect sources and firings,
sweep held-back events, run the local stack."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from khook_core import logs
from khook_core.errors import ConfigError, InvalidEventError, KhookError, PluginLoadError
from khook_core.hooks import parse_duration
from khook_core.settings import Settings
from khook_core.timeparse import parse_time

PROGRESS_MIN_INPUTS = 200
"""Show a progress bar only for inputs long enough to make waiting noticeable."""

EXIT_USAGE = 2
"""A command line that cannot work (argparse's own status for a bad argument)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(
        "text",
        "WARNING"
        if args.command in ("replay", "sources", "schema", "send")
        else settings.log_level,
    )
    try:
        return int(args.run(args, settings))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except KhookError as exc:
        print(f"khook: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `khook replay … | head`: the reader has what it wanted
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="khook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate", help="check mappings, plugins, hooks, budgets and every enabled source"
    )
    p.add_argument("--config", type=Path, help="config directory (default: $KHOOK_CONFIG_DIR)")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("replay", help="run raw payloads through the pipeline in dry-run")
    p.add_argument("--source", required=True, help="source name, e.g. kubernetes")
    p.add_argument("--config", type=Path)
    p.add_argument("--state", default="memory", help="memory (default) or sqlite:PATH")
    p.add_argument("--now", help="fix the clock (RFC 3339) for freshness and dedup windows")
    p.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a transport attribute given with every payload (Pub/Sub attribute "
        "such as kafka.topic=orders); repeatable",
    )
    p.add_argument(
        "file",
        nargs="?",
        default="-",
        help="JSON lines, a JSON array or one JSON document; - for stdin",
    )
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("sources", help="list installed sources, versions and event types")
    p.add_argument("--config", type=Path)
    p.set_defaults(run=cmd_sources)

    p = sub.add_parser("schema", help="print the JSON Schema of each configuration file")
    p.add_argument("which", nargs="?", choices=["mappings", "plugins", "hooks", "budgets"])
    p.set_defaults(run=cmd_schema)

    p = sub.add_parser("firings", help="query the audit trail of the configured state store")
    p.add_argument("--hook", help="namespace/name of a hook")
    p.add_argument("--since", help="RFC 3339 time or a duration back from now (30m, 2h)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--state", help="state store (default: $KHOOK_STATE)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=cmd_firings)

    p = sub.add_parser(
        "sweep", help="one sweep pass: runs owed to held-back events of groups that went quiet"
    )
    p.add_argument("--config", type=Path, help="config directory (default: $KHOOK_CONFIG_DIR)")
    p.add_argument("--state", help="state store (default: $KHOOK_STATE)")
    p.add_argument("--now", help="fix the clock (RFC 3339), e.g. after a replay with --now")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="render the runs instead of dispatching (the backlogs are still taken)",
    )
    p.set_defaults(run=cmd_sweep)

    p = sub.add_parser("up", help="run the whole system on this machine until Ctrl-C")
    p.add_argument("--config", type=Path, help="config directory (default: $KHOOK_CONFIG_DIR)")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".khook"),
        help="state, logs, prompts, dead letters and stack.json (default: .khook)",
    )
    p.add_argument(
        "--bus",
        choices=["auto", "emulator", "memory"],
        default="auto",
        help="Pub/Sub: the emulator when installed (auto), or force one",
    )
    p.add_argument(
        "--no-forwarder",
        dest="forwarder",
        action="store_false",
        help="do not run khook-forwarder even when a cluster is reachable",
    )
    p.add_argument(
        "--sweep-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="tick the sweep function this often, as Cloud Scheduler does (0: never; default 60)",
    )
    p.set_defaults(run=cmd_up)

    p = sub.add_parser("send", help="send payload files to the stack `khook up` runs")
    p.add_argument("source", help="function to feed: kubernetes, alertmanager, webhook, ...")
    p.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="one JSON document, or JSON lines (one payload a line)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".khook"),
        help="where the running stack keeps stack.json (default: .khook)",
    )
    p.add_argument(
        "--attribute",
        "-a",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Pub/Sub attribute (HTTP header for HTTP sources); repeatable",
    )
    p.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move RFC 3339 timestamps so the newest of each file is now",
    )
    p.add_argument("--path", default="/", help="request path for HTTP sources (default: /)")
    p.set_defaults(run=cmd_send)
    return parser


def _settings(settings: Settings, **overrides: Any) -> Settings:
    changes = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=changes) if changes else settings


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.runtime import disabled_sources, load_config

    config_dir = args.config or settings.config_dir
    config = load_config(
        config_dir, disabled_sources=disabled_sources(settings), check_sources=True
    )
    for note in config.notes:
        print(f"{note} (warning)", file=sys.stderr)
    print(
        f"{config_dir}: valid: {len(config.hooks.hooks())} hooks, "
        f"{len(config.hooks.rules)} event configurations, "
        f"{len(config.mapping.entries)} mappings, sources: {', '.join(config.sources.names())}"
    )
    return 0


def read_payloads(stream: TextIO) -> list[Any]:
    """One JSON document, a JSON array of payloads, or JSON lines (a bad line stays a string)."""
    text = stream.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return [_parse_line(line) for line in text.splitlines() if line.strip()]
    return doc if isinstance(doc, list) else [doc]


class _Unparsable(str):
    """A JSON-lines line that is not JSON; replay reports it as invalid."""


def _parse_line(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return _Unparsable(line)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.dispatch.dryrun import DryRunDispatcher
    from khook_core.runtime import Clock, Runtime
    from khook_core.state import open_store

    now = parse_time(args.now, "--now") if args.now else None
    attributes = _attributes(args.attribute)
    settings = _settings(settings, config_dir=args.config, state=args.state, dispatch="dry-run")
    runtime = Runtime.build(
        settings, clock=Clock(now), store=open_store(args.state), dispatcher=DryRunDispatcher()
    )
    sources = runtime.config.sources
    if not sources.installed(args.source):
        runtime.close()
        print(
            f"khook replay: unknown source {args.source!r} "
            f"(installed: {', '.join(sources.names()) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.file == "-":
        payloads = read_payloads(sys.stdin)
    else:
        with open(args.file, encoding="utf-8") as handle:
            payloads = read_payloads(handle)
    counts: Counter[str] = Counter()
    show_progress = sys.stderr.isatty() and len(payloads) >= PROGRESS_MIN_INPUTS
    try:
        for index, payload in enumerate(_progress(payloads, show_progress)):
            for line in _replay_one(index, payload, args.source, attributes, runtime):
                counts[line["decision"]] += 1
                print(json.dumps(line, ensure_ascii=False))
    finally:
        runtime.close()
    summary = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
    print(
        f"replayed {len(payloads)} payloads from {args.source}: {summary or 'nothing'}",
        file=sys.stderr,
    )
    return 0


def _attributes(values: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict (the value may contain ``=``)."""
    attributes = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise KhookError(f"--attribute expects KEY=VALUE, got {value!r}")
        attributes[key] = rest
    return attributes


def _replay_one(
    index: int, payload: Any, source: str, attributes: dict[str, str], runtime: Any
) -> list[dict[str, Any]]:
    from khook_core.pipeline import run_pipeline

    try:
        if isinstance(payload, _Unparsable):
            raise InvalidEventError(f"line is not JSON: {payload[:80]!r}")
        decisions = run_pipeline(source, payload, attributes, runtime=runtime)
    except InvalidEventError as exc:
        return [
            {
                "input": index,
                "decision": "failed:invalid",
                "event": None,
                "hook": None,
                "agent": None,
                "prompt": None,
                "detail": exc.message,
                "field": exc.field,
            }
        ]
    except PluginLoadError:
        raise
    return [{"input": index, **d.to_json()} for d in decisions]


def _progress(items: list[Any], show: bool) -> Iterator[Any]:
    total = len(items)
    for index, item in enumerate(items):
        if show and index % 50 == 0:
            done = index * 30 // total
            sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {index}/{total}")
            sys.stderr.flush()
        yield item
    if show:
        sys.stderr.write(f"\r[{'#' * 30}] {total}/{total}\n")


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.runtime import disabled_sources, load_config

    config = load_config(
        args.config or settings.config_dir, disabled_sources=disabled_sources(settings)
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
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.budget import Budgets
    from khook_core.hooks import HookDocument
    from khook_core.mapping import MappingFile, MappingRow
    from khook_core.sources.registry import PluginsFile

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


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.now().astimezone() - parse_duration(value)
    except ValueError:
        return parse_time(value, "--since")


def cmd_firings(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_store

    store = open_store(args.state or settings.state)
    try:
        rows = store.firings(hook=args.hook, since=_since(args.since), limit=args.limit)
    finally:
        store.close()
    for f in rows:
        if args.json:
            print(json.dumps({**f.__dict__, "at": f.at.isoformat()}))
        else:
            print(
                f"{f.at:%Y-%m-%dT%H:%M:%SZ}  {f.outcome:<18} {f.hook:<32} {f.event_type:<16} "
                f"{f.resource:<40} {f.agent} {f.task_id} {f.error}".rstrip()
            )
    return 0


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.pipeline import sweep
    from khook_core.runtime import Clock, Runtime

    now = parse_time(args.now, "--now") if args.now else None
    settings = _settings(
        settings,
        config_dir=args.config,
        state=args.state,
        dispatch="dry-run" if args.dry_run else None,
    )
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


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.localstack.stack import UpOptions, run_up

    return run_up(
        UpOptions(
            state_dir=args.state_dir,
            config_dir=args.config or settings.config_dir,
            bus=args.bus,
            forwarder=args.forwarder,
            sweep_every=args.sweep_every,
        )
    )


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.localstack.send import SendError, run_send

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
        return 1


if __name__ == "__main__":
    sys.exit(main())
