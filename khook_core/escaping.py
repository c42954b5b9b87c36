"""Escaping: event text made visible and bounded before an agent or a person reads it.

Event values are chosen by whoever can break a pod or send a request. Wherever one is shown
outside the prompt's fenced data block (a quoted value in a prompt's instructions, A2A message
metadata, a webhook notification), it goes through this module, so every such place follows the
same rules:

- a character a reader cannot see or could misread (control characters, bidi overrides,
  zero-width and other format characters, line separators, odd spaces, invisible fillers and
  variation selectors, lone surrogates) becomes a visible escape: ``\\n``, ``\\t``, ``\\u202e``,
  ``\\U000e0041``. It is never removed: removing characters can join the pieces around them
  into a marker the text did not contain;
- in strict mode (the default) every character outside printable ASCII is escaped too, so a
  Cyrillic look-alike shows as ``\\u0435``, not as a Latin ``e``;
- a value longer than its limit (counted on the escaped text) is cut at a character boundary,
  never inside an escape, and ends with ``…`` (``TRUNCATION_MARK``).

``quote`` builds the prompt's quoted literal on top: strict escaping, backslashes and the
delimiters escaped too, wrapped in the delimiters. In it a bare ``…`` can only be the cut mark:
the value's own ``…`` is escaped as ``\\u2026``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

TRUNCATION_MARK: Final = "…"
"""Ends a value that was cut to its limit."""
MAX_VALUE_CHARS: Final = 256
"""The default limit of one escaped value: a Kubernetes object name (253) fits whole."""

_SHORT: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Characters that print as nothing but are letters or marks, so ``str.isprintable`` keeps them:
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian free variation
# selectors and the variation selectors (one of the ways to smuggle text invisibly).
_INVISIBLE: Final = frozenset(
    chr(code)
    for code in (
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        *range(0x180B, 0x1810),
        0x3164,
        0xFFA0,
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    )
)


def visible(ch: str) -> str:
    """The escape that shows ``ch``: ``\\n``, ``\\r``, ``\\t``, else ``\\uXXXX`` or
    ``\\UXXXXXXXX``."""
    if short := _SHORT.get(ch):
        return short
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def cut(text: str, limit: int) -> str:
    """``text`` whole, or its head and ``…`` in ``limit`` characters. Nothing is escaped: for
    text that is escaped later, as the JSON of the prompt's data block is."""
    return text if len(text) <= limit else text[: limit - 1] + TRUNCATION_MARK


def clean(
    text: str, limit: int = MAX_VALUE_CHARS, *, ascii_only: bool = True, multiline: bool = False
) -> str:
    """``text`` with every character a reader could not see or could misread escaped visibly,
    cut to ``limit`` characters (escapes included).

    Args:
        text: the untrusted value.
        limit: the most characters returned, ``…`` included.
        ascii_only: escape every character outside printable ASCII (look-alike letters too);
            False keeps the letters and symbols of every script, for text people read.
        multiline: keep newlines and tabs as they are (a message in a notification body);
            a backslash is never escaped here, since nothing parses these values back.
    """
    head = text[:limit]  # every character yields at least one: the rest cannot fit
    if head.isascii() and head.isprintable():  # the common case: nothing to escape
        return cut(text, limit)
    escape = _strict if ascii_only else _readable
    if multiline:
        return _escaped(text, limit, lambda ch: ch if ch in "\n\t" else escape(ch))
    return _escaped(text, limit, escape)


def quote(text: str, limit: int = MAX_VALUE_CHARS, delimiters: str = '""') -> str:
    """``text`` as a quoted literal: strict escaping, with backslashes, ``"`` and the two
    ``delimiters`` escaped too, cut to ``limit`` characters between the delimiters.

    Example: ``quote('web-0 "x"\\n')`` is ``"web-0 \\"x\\"\\n"``.
    """
    opening, closing = delimiters[0], delimiters[-1]
    head = text[:limit]
    if (
        head.isascii()
        and head.isprintable()
        and '"' not in head
        and "\\" not in head
        and (opening == '"' or (opening not in head and closing not in head))
    ):  # the common case: nothing to escape
        body = cut(text, limit)
    else:
        specials = {"\\", '"', opening, closing}

        def escape(ch: str) -> str:
            if ch in specials:
                return "\\" + ch if ch.isascii() else visible(ch)
            return _strict(ch)

        body = _escaped(text, limit, escape)
    return f"{opening}{body}{closing}"


def _strict(ch: str) -> str:
    return ch if " " <= ch <= "~" else visible(ch)


def _readable(ch: str) -> str:
    return ch if ch.isprintable() and ch not in _INVISIBLE else visible(ch)


def _escaped(text: str, limit: int, escape: Callable[[str], str]) -> str:
    """``text`` escaped character by character, cut at a character boundary so that it and the
    mark fit in ``limit``. Every character yields at least one, so only the head is looked at."""
    pieces = [escape(ch) for ch in text[:limit]]
    if len(text) <= limit and sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    room = limit - len(TRUNCATION_MARK)
    kept: list[str] = []
    for piece in pieces:
        room -= len(piece)
        if room < 0:
            break
        kept.append(piece)
    return "".join(kept) + TRUNCATION_MARK
