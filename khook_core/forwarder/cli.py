"""The ``khook-forwarder`` command: flags mirror ``ForwarderSettings`` field by field.

Flags are generated from the settings model, so a new setting is a flag, an environment
variable (``KHOOK_FORWARDER_<NAME>``) and a line of ``--help`` at once. SIGTERM and SIGINT stop
the watch and flush the queue within ``--flush-seconds``; the exit status says whether anything
queued was lost (0 no, 1 yes, 2 bad configuration).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from khook_core import logs, telemetry
from khook_core.errors import ConfigError
from khook_core.forwarder.config import ForwarderSettings
from khook_core.settings import TelemetrySettings

if TYPE_CHECKING:
    from khook_core.forwarder.app import Forwarder

logger = logging.getLogger("khook_core.forwarder")

SIGNAL_POLL_SECONDS = 0.5
"""Longest delay between SIGTERM and the start of the flush."""


def _flag_type(annotation: Any) -> tuple[Any, list[str] | None]:
    """argparse ``type`` and ``choices`` for a settings field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str, [str(a) for a in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _flag_type(args[0])
    if annotation in (int, Path):
        return annotation, None
    return str, None  # floats too: seconds may be durations (5m), which the model reads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="khook-forwarder",
        description="Watch Kubernetes Events and publish those that could fire a khook hook "
        "to Pub/Sub. Every flag can also be set as KHOOK_FORWARDER_<FLAG>.",
    )
    for name, info in ForwarderSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = (info.description or "").split("\n\n")[0].replace("%", "%%")
        if info.annotation is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        kind, choices = _flag_type(info.annotation)
        parser.add_argument(
            flag,
            dest=name,
            type=kind,
            choices=choices,
            default=None,
            help=f"{help_text} (default: {info.default!r})",
        )
    return parser


def settings_from(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ForwarderSettings:
    """The flags in ``argv`` over the variables in ``environ``.

    Raises:
        ConfigError: an invalid flag or variable, named.
    """
    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    return ForwarderSettings.from_env(environ, overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = settings_from(argv, os.environ)  # the forwarder's one read
        settings.topic_path()
    except (ConfigError, ValueError) as exc:
        print(f"khook-forwarder: invalid settings: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)

    from khook_core.forwarder.app import Forwarder

    try:
        # KHOOK_TELEMETRY is shared with the functions, so it is not a forwarder flag.
        tracing = telemetry.build(TelemetrySettings.from_env(os.environ), function="forwarder")
        forwarder = Forwarder(settings, telemetry=tracing)
    except ConfigError as exc:
        logger.error("invalid configuration:\n%s", exc)
        return 2
    with telemetry.closing(tracing):
        return _serve(forwarder)


def _serve(forwarder: Forwarder) -> int:
    """Run until SIGTERM or SIGINT; 0 when nothing queued was lost."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: types.FrameType | None) -> None:
        logger.info("received %s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    forwarder.start()
    # Wait in short slices: the kernel may deliver SIGTERM to a gRPC or watch thread, and the
    # Python handler then runs only once the main thread wakes up by itself.
    while not stop.wait(SIGNAL_POLL_SECONDS):
        pass
    return 0 if forwarder.stop() else 1
