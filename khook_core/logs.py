"""Logging set-up for entry points: one JSON object per line for Cloud Logging, or plain text.

Library modules only ``logging.getLogger(__name__)``; functions, the CLI and the forwarder call
``configure()``. Context (event id, hook, message id) set with ``bind()`` is attached to every
line as ``logging.googleapis.com/labels``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_labels: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "khook_log_labels", default=None
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def bind(**labels: str) -> _Bound:
    """Attach labels to every log line written inside the block (``with bind(hook=...):``)."""
    return _Bound(labels)


class _Bound:
    """``bind``'s block: a plain context manager, as every delivery enters one (a generator
    based one costs several times more)."""

    __slots__ = ("_labels", "_token")

    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = labels

    def __enter__(self) -> None:
        self._token = _labels.set({**(_labels.get() or {}), **self._labels})

    def __exit__(self, *exc_info: object) -> None:
        _labels.reset(self._token)


class JsonFormatter(logging.Formatter):
    """Cloud Logging structured format: ``severity``, ``message``, labels, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        labels = {**(_labels.get() or {}), **getattr(record, "labels", {})}
        if labels:
            entry["logging.googleapis.com/labels"] = {k: str(v) for k, v in labels.items()}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "labels":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def configure(fmt: str = "text", level: str = "INFO") -> None:
    """Install one stream handler on the root logger (idempotent)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stdout if fmt == "json" else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.handlers = [handler]
    root.setLevel(level.upper())
