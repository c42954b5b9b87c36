"""``khook replay``: raw payloads through the pipeline in dry-run, one JSON line per decision.

A decision about an event that hooks with a ``when:`` condition were asked about carries
``conditions``: per such hook, whether the condition matched and the values it read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final, TextIO

from khook_core.cli import options
from khook_core.decisions import DecisionKind
from khook_core.errors import InvalidEventError, PluginLoadError
from khook_core.settings import Settings

PROGRESS_MIN_INPUTS: Final = 200
"""Show a progress bar only for inputs long enough to make waiting noticeable."""
NOW_AUTO: Final = "auto"
"""``--now auto``: the clock of each payload is its own newest timestamp."""
EXIT_INVALID: Final = 1
"""Some input was invalid (``failed:invalid``) and ``--allow-invalid`` was not given."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="run raw payloads through the pipeline in dry-run",
        description="Run raw payloads through the pipeline in dry-run: one JSON line per "
        "decision on stdout, a summary on stderr. Exit 1 when an input was invalid "
        "(failed:invalid) unless --allow-invalid. A hook's when: condition is shown under "
        "conditions: matched (true, false, or null with the error) and the values it read.",
        epilog="example:\n  kubectl get events -A -o json | jq -c '.items[]' | "
        "khook replay --source kubernetes --now auto",
    )
    p.add_argument("--source", required=True, help="source name, e.g. kubernetes (required)")
    options.add_config_flag(p)
    p.add_argument(
        "--state", default="memory", metavar="URL", help="memory or sqlite:PATH (default: memory)"
    )
    p.add_argument(
        "--now",
        "--at",
        metavar="TIME",
        help="fix the clock for freshness and dedup windows: an RFC 3339 time, or auto for "
        "each payload's own newest timestamp, to replay events recorded earlier; the "
        "silences and maintenance windows in force then apply (default: the wall clock)",
    )
    p.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a transport attribute given with every payload (Pub/Sub attribute "
        "such as kafka.topic=orders); repeatable (default: none)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="add to each line what redaction masked in its event: kind and field path, "
        "never the value (default: off)",
    )
    p.add_argument(
        "--allow-invalid",
        action="store_true",
        help="exit 0 even when some inputs were invalid (default: exit 1)",
    )
    p.add_argument(
        "file",
        nargs="?",
        default="-",
        help="JSON lines, a JSON array or one JSON document; - for stdin (default: -)",
    )
    p.set_defaults(run=cmd_replay)


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

    auto = args.now == NOW_AUTO
    try:
        now = None if auto else options.now(args.now)
    except options.UsageError:
        raise options.UsageError(
            f"--now {args.now}: expected an RFC 3339 time (2026-01-05T10:35:00Z) or auto"
        ) from None
    attributes = _attributes(args.attribute)
    settings = options.with_config_and_state(settings, args.config, args.state, dispatch="dry-run")
    payloads = _load(args.file)
    clock = Clock(now)
    runtime = Runtime.build(
        settings, clock=clock, store=open_store(settings.state), dispatcher=DryRunDispatcher()
    )
    if args.explain:
        runtime.redactor.findings = {}
    sources = runtime.config.sources
    if not sources.installed(args.source):
        runtime.close()
        raise options.UsageError(
            f"unknown source {args.source!r} (installed: {', '.join(sources.names()) or 'none'})"
        )
    counts: Counter[str] = Counter()
    show_progress = sys.stderr.isatty() and len(payloads) >= PROGRESS_MIN_INPUTS
    order = list(range(len(payloads)))
    instants: list[datetime | None] = []
    if auto:
        # Run in the order things happened, as they would have reached khook: dedup windows
        # and clock-aligned budgets judge each event against the ones before it in time.
        instants = [_newest(p) for p in payloads]
        order.sort(key=lambda i: (instants[i] is None, instants[i] or datetime.min, i))
    held: dict[int, list[dict[str, Any]]] = {}
    try:
        for index in _progress(order, show_progress):
            if auto:
                clock.fixed = instants[index]
            lines = _replay_one(index, payloads[index], args.source, attributes, runtime)
            counts.update(line["decision"] for line in lines)
            if auto:
                held[index] = lines  # printed in input order below
            else:
                _print(lines)
    finally:
        runtime.close()
    for index in sorted(held):
        _print(held[index])
    summary = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
    print(
        f"replayed {len(payloads)} payloads from {args.source}: {summary or 'nothing'}",
        file=sys.stderr,
    )
    invalid = counts[DecisionKind.FAILED_INVALID]
    if invalid and not args.allow_invalid:
        print(
            f"khook replay: {invalid} invalid input{'s' * (invalid > 1)} (see failed:invalid "
            "above; --allow-invalid to exit 0 anyway)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    return 0


def _print(lines: list[dict[str, Any]]) -> None:
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))


def _load(file: str) -> list[Any]:
    try:
        if file == "-":
            return read_payloads(sys.stdin)
        with open(file, encoding="utf-8") as handle:
            return read_payloads(handle)
    except UnicodeDecodeError:
        where = "stdin" if file == "-" else file
        raise options.UsageError(f"{where}: not UTF-8 text (expected JSON)") from None


def _newest(payload: Any) -> datetime | None:
    """The newest timestamp inside ``payload`` (None, the wall clock, when it has none)."""
    from khook_core import timeshift

    return None if isinstance(payload, _Unparsable) else timeshift.newest(payload)


def _attributes(values: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict (the value may contain ``=``)."""
    attributes = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise options.UsageError(f"--attribute {value}: expected KEY=VALUE")
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
                "decision": DecisionKind.FAILED_INVALID,
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
    lines = [_with_conditions({"input": index, **d.to_json()}, d, runtime) for d in decisions]
    findings = runtime.redactor.findings
    if findings is not None:  # --explain
        for line, d in zip(lines, decisions, strict=True):
            found = findings.get(d.event.id, []) if d.event is not None else []
            line["redacted"] = [{"kind": f.kind, "path": f.path} for f in found]
    return lines


def _with_conditions(line: dict[str, Any], decision: Any, runtime: Any) -> dict[str, Any]:
    """``line`` plus, when hooks with a ``when:`` saw its event, what each condition made of it:
    every such hook, so a hook whose condition said no shows beside the one that fired."""
    from khook_core.conditions import ConditionError

    event = decision.event
    if event is None:
        return line
    shown = []
    for rule in runtime.config.hooks.candidates(event):
        if rule.when is None:
            continue
        entry: dict[str, Any] = {
            "hook": rule.hook,
            "event_type": rule.event_type,
            "when": rule.when.text,
        }
        try:
            entry["matched"] = rule.when(event)
        except ConditionError as exc:
            entry["matched"], entry["error"] = None, str(exc)
        entry["values"] = rule.when.seen(event)
        shown.append(entry)
    if shown:
        line["conditions"] = shown
    return line


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
