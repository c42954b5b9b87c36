"""Mappings read from YAML that remember their lines, so problems can say ``file:line``."""

from __future__ import annotations

from typing import Any


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line it starts on and the line of each key."""

    line: int = 0
    key_lines: dict[str, int]
    value_text: dict[str, tuple[int, str]]
    """For each key whose value is a scalar: the line the value starts on and its text as
    written in the file (quotes, block indicator and all), to point inside multi-line values."""


def line_of(value: Any, key: str | None = None) -> int | None:
    """The line of a mapping (or of one of its keys), when it came from a YAML file."""
    if isinstance(value, LineDict):
        if key is not None and key in value.key_lines:
            return value.key_lines[key]
        return value.line
    return None


def line_within(value: Any, key: str, token: str, occurrence: int = 0) -> int | None:
    """The line of the ``occurrence``-th ``token`` inside the scalar at ``key`` as written in
    the file, so a problem in line 5 of a block-scalar prompt points at that line; None when the
    token is not written literally there (an escape in a double-quoted string)."""
    if not isinstance(value, LineDict) or key not in value.value_text:
        return None
    first, written = value.value_text[key]
    at = -1
    for _ in range(occurrence + 1):
        at = written.find(token, at + 1)
        if at < 0:
            return None
    return first + written.count("\n", 0, at)
