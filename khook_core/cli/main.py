"""The parser and the error handling every command shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from khook_core import logs
from khook_core.cli import (
    approvals,
    completion,
    config_commands,
    firings,
    incidents,
    live_config,
    options,
    replay,
    silences,
    stack_commands,
)
from khook_core.cli import status as status_command
from khook_core.errors import ConfigError, InvalidEventError, KhookError
from khook_core.settings import Settings
from khook_core.yamlfile import UNREADABLE

DISTRIBUTION = "khook-serverless"
QUIET_COMMANDS = frozenset({"replay", "sources", "schema", "send", "status", "completion"})
"""Commands whose output is the point: library INFO logs would only interleave with it."""
DESCRIPTION = (
    "khook serverless: check the configuration, replay payloads in dry-run, see what fired, "
    "and run the whole system on this machine."
)
EPILOG = """\
examples:
  khook validate --config config
  khook replay --source kubernetes --now auto events.jsonl
  khook firings --since 30m
  khook config push             # publish config/ to the functions, live
  khook up                      # the whole system on this machine (make run)

`khook COMMAND --help` shows each command's options and an example."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f"khook {args.command}"
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"khook: {problem}", file=sys.stderr)
        return options.EXIT_USAGE
    logs.configure("text", "WARNING" if args.command in QUIET_COMMANDS else settings.log_level)
    try:
        return int(args.run(args, settings))
    except options.UsageError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return options.EXIT_USAGE
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        unreadable = all(p.message.startswith(UNREADABLE) for p in exc.problems)
        return options.EXIT_USAGE if unreadable else 1
    except InvalidEventError as exc:
        if exc.field and exc.field.startswith("--"):  # a flag's value, e.g. --now
            print(f"{command}: {exc}", file=sys.stderr)
            return options.EXIT_USAGE
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    except KhookError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `khook replay … | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except OSError as exc:  # a file or directory the command line named
        print(f"{command}: {describe_os_error(exc)}", file=sys.stderr)
        return options.EXIT_USAGE


def describe_os_error(exc: OSError) -> str:
    """``PATH: problem`` in words, as ``khook send`` reports an unreadable file."""
    path = exc.filename if exc.filename is not None else ""
    problem = exc.strerror or str(exc)
    return f"{path}: {problem.lower()}" if path else problem.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="khook",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_SubParser
    )
    config_commands.add_parsers(sub)
    live_config.add_parsers(sub)
    replay.add_parser(sub)
    firings.add_parser(sub)
    incidents.add_parser(sub)
    status_command.add_parser(sub)
    silences.add_parsers(sub)
    approvals.add_parsers(sub)
    stack_commands.add_parsers(sub)
    completion.add_parser(sub)
    parser.set_defaults(parser=parser)
    return parser


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; examples (the epilogs) kept line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(("example", "`khook")) or "\n  " in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _SubParser(argparse.ArgumentParser):
    """A sub-command's parser: its example epilog keeps its line breaks."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
