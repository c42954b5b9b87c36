"""The one escaping of event values shown outside the prompt's data block."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khook_core import escaping

LITERAL = re.compile(r'"(?:[ !#-\[\]-~]|\\[\\"nrt]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*…?"')
ESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|U([0-9a-f]{8})|(.))", re.S)


def decode(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        if code:
            return chr(int(code, 16))
        return {"n": "\n", "r": "\r", "t": "\t"}.get(match.group(3), match.group(3))

    return ESCAPE.sub(one, body)


@pytest.mark.parametrize(
    ("text", "strict", "readable"),
    [
        ("web-0", "web-0", "web-0"),
        ("caf\u00e9 \u65e5\u672c", "caf\\u00e9 \\u65e5\\u672c", "caf\u00e9 \u65e5\u672c"),
        ("a\u202eb\u200bc\ufeffd", "a\\u202eb\\u200bc\\ufeffd", "a\\u202eb\\u200bc\\ufeffd"),
        ("a\nb\tc\rd\x00e\x7f", "a\\nb\\tc\\rd\\u0000e\\u007f", "a\\nb\\tc\\rd\\u0000e\\u007f"),
        ("a\u2028b\u00a0c", "a\\u2028b\\u00a0c", "a\\u2028b\\u00a0c"),
        ("\U000e0041\ufe0f\u3164", "\\U000e0041\\ufe0f\\u3164", "\\U000e0041\\ufe0f\\u3164"),
        ("x\ud800", "x\\ud800", "x\\ud800"),
        ('back\\slash "q"', 'back\\slash "q"', 'back\\slash "q"'),
    ],
)
def test_clean_escapes_what_a_reader_cannot_see_and_strict_mode_all_non_ascii(
    text: str, strict: str, readable: str
):
    assert escaping.clean(text) == strict
    assert escaping.clean(text, ascii_only=False) == readable


def test_multiline_keeps_line_breaks_and_tabs_only():
    assert escaping.clean("a\nb\tc\r\u2028", ascii_only=False, multiline=True) == (
        "a\nb\tc\\r\\u2028"
    )


def test_a_cut_never_splits_an_escape_and_the_limit_counts_escapes():
    assert escaping.clean("ab\u202ecd", 5) == "ab…"
    assert escaping.clean("ab\u202ecd", 9) == "ab\\u202e…"
    assert escaping.clean("a" * 10, 10) == "a" * 10
    assert escaping.clean("a" * 11, 10) == "a" * 9 + "…"


def test_quote_escapes_backslashes_quotes_and_the_given_delimiters():
    assert escaping.quote('a\\b"c') == '"a\\\\b\\"c"'
    assert escaping.quote("it's `x`", delimiters="''") == "'it\\'s `x`'"
    assert escaping.quote("\u201cx\u201d", delimiters="\u201c\u201d") == (
        "\u201c\\u201cx\\u201d\u201d"
    )
    assert escaping.quote("ends with\u2026") == '"ends with\\u2026"'  # only the mark is bare


@settings(max_examples=200, deadline=None)
@given(text=st.text(), limit=st.integers(min_value=1, max_value=80))
def test_any_text_quotes_to_one_printable_literal_of_its_head(text: str, limit: int):
    literal = escaping.quote(text, limit)
    assert LITERAL.fullmatch(literal), literal
    body = literal[1:-1]
    assert len(body) <= limit
    if body.endswith("…"):
        assert text.startswith(decode(body[:-1]))
        assert len(decode(body[:-1])) < len(text)
    else:
        assert decode(body) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(), limit=st.integers(min_value=1, max_value=80))
def test_any_text_cleans_to_at_most_its_limit_with_nothing_invisible(text: str, limit: int):
    for ascii_only in (True, False):
        cleaned = escaping.clean(text, limit, ascii_only=ascii_only)
        assert len(cleaned) <= limit
        assert cleaned.replace("…", "").isprintable()
