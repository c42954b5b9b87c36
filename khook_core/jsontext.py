"""Strict JSON for untrusted payloads: the one parser every transport and source uses.

``json.loads`` accepts things no sender means and later steps cannot handle: ``NaN`` and
``Infinity``, numbers such as ``1e999`` that overflow to infinity, nesting deep enough to raise
``RecursionError`` (in the parser or in anything that walks the result), and ``\\ud800``-style
escapes that decode to lone surrogates, text that cannot be encoded as UTF-8 (hashing, SQLite,
logs and the agent's request would all fail on it). ``loads`` refuses each of them with an
``InvalidEventError`` naming the field, so a function answers 400 or acknowledges the message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, Final

from khook_core.errors import InvalidEventError

MAX_DEPTH: Final = 64
"""Containers inside containers. Real payloads stay far below (a Kubernetes Event or a
Debezium change with its schema is under 10 deep); a limit this low also keeps every later
recursive walk (validation, prompt rendering, ``json.dumps``) far from Python's stack limit."""

_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
"""An escape or a character that may decode to a surrogate. Only when the text has one is the
parsed document walked: a valid pair (``\\ud83d\\ude00``) decodes to one character and passes."""
_SURROGATE_ESCAPE_TEXT: Final = re.compile(r"\\u[dD][89a-fA-F]")
"""The escapes alone: enough for text decoded from UTF-8 or all ASCII."""


class JsonLimitError(InvalidEventError):
    """Syntactically JSON, but refused: too deep, a non-finite number or unencodable text."""


def loads(data: bytes | str, *, field: str = "body", check_text: bool = True) -> Any:
    """Parse ``data`` (UTF-8, a BOM tolerated) strictly.

    Args:
        data: the document.
        field: what the document is called in errors (``body``, ``message.data``).
        check_text: refuse strings and keys that are not valid Unicode; the field of that
            error is the path inside the document (``resource.name``, ``alerts[0].labels``).

    Raises:
        JsonLimitError: too deep, NaN/Infinity or an overflowing number, a lone surrogate.
        InvalidEventError: not UTF-8 or not JSON (``field`` is ``field``).
    """
    if isinstance(data, bytes | bytearray | memoryview):
        decoded = True
        try:
            # "utf-8-sig" is "utf-8" less one leading BOM, but decodes through a Python-level
            # codec function (about 1.5 us more a call); it is kept for the error's byte offset.
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            try:
                bytes(data).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise InvalidEventError(
                    f"{field} is not UTF-8 (byte {exc.start})", field=field
                ) from None
            raise  # unreachable: the two codecs refuse the same bytes
        if text.startswith("\ufeff"):
            text = text[1:]
    else:
        decoded, text = False, data
    try:
        if text.startswith("\ufeff"):  # as ``json.loads`` refuses it in text
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        document = _DECODER.decode(text)
    except _NotFinite as exc:
        raise JsonLimitError(f"malformed JSON: {exc} (not a finite number)", field=field) from None
    except RecursionError:
        raise _too_deep(field) from None
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field=field
        ) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InvalidEventError(f"malformed JSON: {exc}", field=field) from None
    if text.count("[") + text.count("{") > MAX_DEPTH and depth(document) > MAX_DEPTH:
        raise _too_deep(field)
    # Strictly decoded UTF-8 and ASCII hold no surrogate character, only escapes, which the
    # literal-prefixed pattern finds many times faster than the one with a character class.
    surrogate = _SURROGATE_ESCAPE_TEXT if decoded or text.isascii() else _SURROGATE
    if check_text and surrogate.search(text):
        path = unencodable_path(document)
        if path is not None:
            raise JsonLimitError(unencodable_message(path), field=path or field)
    return document


class _NotFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NotFinite(literal if len(literal) <= 40 else literal[:37] + "...")
    return value


_DECODER: Final = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
"""Built once: ``json.loads`` with hooks builds a new decoder for every document."""


def _too_deep(field: str) -> JsonLimitError:
    return JsonLimitError(
        f"malformed JSON: {field} is nested more than {MAX_DEPTH} levels deep", field=field
    )


def depth(document: Any) -> int:
    """How many containers deep ``document`` goes (0 for a scalar); iterative, any depth."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def encodable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (it holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unencodable_path(value: Any, prefix: str = "") -> str | None:
    """The path of the first string or key in ``value`` that is not encodable, or None.

    Paths read like the sources' field names: ``resource.name``, ``alerts[0].labels.pod``; ""
    is ``value`` itself.
    """
    if _all_encodable(value):  # the usual case, settled without building a path
        return None
    for path, text in _texts(value, prefix):
        if not encodable(text):
            return path
    return None


def may_hold_surrogate(data: bytes | str) -> bool:
    """Whether JSON text could decode to a lone surrogate: strictly decoded UTF-8 holds none,
    so only an escape (``\\udXXX``) can make one. False settles it without a walk."""
    if isinstance(data, str):
        return _SURROGATE.search(data) is not None
    return _SURROGATE_ESCAPE.search(data) is not None


_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _all_encodable(value: Any) -> bool:
    """Whether every string and key in ``value`` encodes (``unencodable_path`` finds None)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and not encodable(node):
                return False
        elif isinstance(node, dict):
            for key in node:
                if not isinstance(key, str) or not (key.isascii() or encodable(key)):
                    return False
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return True


def printable(text: str) -> str:
    """``text`` with its lone surrogates written as ``\\udXXX`` escapes, so it can be shown."""
    return text if encodable(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def unencodable_message(path: str) -> str:
    return (
        f"{path or 'the text'} is not valid Unicode (a lone surrogate such as \\ud800); "
        "send UTF-8 text"
    )


def _texts(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    stack: list[tuple[str, Any]] = [(prefix, value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, dict):
            for key, child in reversed(node.items()):
                label = printable(str(key))
                name = f"{path}.{label}" if path else label
                if isinstance(key, str) and not encodable(key):
                    yield name, key
                stack.append((name, child))
        elif isinstance(node, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(node))))
