"""The strict JSON parser every transport and source uses."""

from __future__ import annotations

import re

import pytest

from khook_core import jsontext
from khook_core.errors import InvalidEventError


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[-Infinity]", "-Infinity"),
        (b'{"a": 1e999}', "1e999"),
        (b"[-1E+400]", "-1E+400"),
        (b"[1.5e308, 2e308]", "2e308"),
    ],
)
def test_numbers_that_are_not_finite_are_refused_like_nan(text: bytes, shown: str) -> None:
    with pytest.raises(jsontext.JsonLimitError, match=re.escape(shown)) as caught:
        jsontext.loads(text)
    assert (caught.value.status, caught.value.field) == (400, "body")


def test_finite_numbers_keep_their_value() -> None:
    assert jsontext.loads(b"[1.7976931348623157e308, -0.0, 1e-999, 12]") == [
        1.7976931348623157e308,
        -0.0,
        0.0,
        12,
    ]


@pytest.mark.parametrize("depth", [jsontext.MAX_DEPTH + 1, 999, 5000, 200_000])
def test_nesting_over_the_limit_is_refused_never_a_recursion_error(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        with pytest.raises(jsontext.JsonLimitError, match="nested more than"):
            jsontext.loads(text, field="message.data")


def test_nesting_at_the_limit_passes_however_many_containers() -> None:
    deep = "[" * jsontext.MAX_DEPTH + "]" * jsontext.MAX_DEPTH
    wide = "[" + ",".join(["{}"] * 5000) + "]"
    assert jsontext.depth(jsontext.loads(deep)) == jsontext.MAX_DEPTH
    assert len(jsontext.loads(wide)) == 5000


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (r'{"resource": {"name": "web-\ud800"}}', "resource.name"),
        (r'{"alerts": [{"labels": {"pod": "\udfff"}}]}', "alerts[0].labels.pod"),
        (r'{"tags": {"k\udc00": "v"}}', "tags.k\\udc00"),
        (r'["ok", "\ude00\ud83d"]', "[1]"),
        (r'"\ud800"', "body"),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(jsontext.JsonLimitError, match="not valid Unicode") as caught:
        jsontext.loads(text)
    assert caught.value.field == field
    caught.value.message.encode("utf-8")  # the error itself is printable


def test_a_surrogate_pair_is_one_character_and_passes() -> None:
    assert jsontext.loads(r'{"emoji": "\ud83d\ude00", "k": "\\ud800"}') == {
        "emoji": "\U0001f600",
        "k": "\\ud800",
    }


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'{"a": 1,}', "line 1 column 9"),
        (b"[1" + b"0" * 5000 + b"]", "digits"),
    ],
)
def test_other_malformed_documents_are_plain_invalid_events(data: bytes, text: str) -> None:
    with pytest.raises(InvalidEventError, match=text) as caught:
        jsontext.loads(data)
    assert not isinstance(caught.value, jsontext.JsonLimitError)


def test_a_byte_order_mark_is_tolerated() -> None:
    assert jsontext.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("data", "may"),
    [
        (rb'{"a": "\ud800"}', True),
        (rb'{"a": "\uDBFF\uDC00"}', True),  # a valid pair may hold one too: the walk decides
        (rb'{"a": "\u00e9 \u2028"}', False),
        ('{"a": "é ☃"}'.encode(), False),
        ('{"a": "\ud800"}', True),  # text, not bytes: a lone surrogate itself
        ('{"a": "é"}', False),
    ],
)
def test_only_an_escape_can_hide_a_lone_surrogate_in_utf8(data: bytes | str, may: bool) -> None:
    assert jsontext.may_hold_surrogate(data) is may


def test_unencodable_paths_are_found_behind_keys_of_any_type() -> None:
    assert jsontext.unencodable_path({1: ["fine", {"k": "\udc80"}]}, "body") == "body.1[1].k"
    assert jsontext.unencodable_path({2: 1, "x\ud800": 1}) == "x\\ud800"
    assert jsontext.unencodable_path({1: ["fine"], ("t",): "é"}) is None


def test_bytes_may_start_with_one_bom_and_a_bad_byte_is_counted_after_it() -> None:
    assert jsontext.loads(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == {"a": "\u00e9"}
    assert jsontext.loads(b"\xef\xbb\xbf[1]") == [1]
    with pytest.raises(InvalidEventError, match="Unexpected UTF-8 BOM"):
        jsontext.loads(b"\xef\xbb\xbf\xef\xbb\xbf[1]")
    with pytest.raises(InvalidEventError, match=re.escape("body is not UTF-8 (byte 7)")):
        jsontext.loads(b'\xef\xbb\xbf{"a": "\xff"}')
    with pytest.raises(InvalidEventError, match=re.escape("data is not UTF-8 (byte 7)")):
        jsontext.loads(b'{"a": "\xff"}', field="data")
    with pytest.raises(InvalidEventError, match="Unexpected UTF-8 BOM"):
        jsontext.loads("\ufeff[1]")  # text keeps json.loads' rule
