"""Watch lines: the object's own text is kept when the line is laid out as the API server lays
it out, so the forwarder publishes the Event exactly as it was sent; any other layout is parsed
the general way, to the same object."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from khook_core.forwarder.kube import RawWatch
from tests.support.forwarder import NOW, make_filter
from tests.support.k8s_events import new_event

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
OBJECTS = st.dictionaries(st.text(), JSON_VALUES, max_size=6)


def server_line(kind: str, obj: dict[str, Any], *, ascii_only: bool = False) -> str:
    """A watch line as the API server writes it: compact, ``type`` first."""
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":"), ensure_ascii=ascii_only)


@given(obj=OBJECTS, ascii_only=st.booleans(), kind=st.sampled_from(["ADDED", "MODIFIED"]))
def test_a_server_line_keeps_the_objects_text_and_parses_to_the_same_object(
    obj: dict[str, Any], ascii_only: bool, kind: str
):
    event = RawWatch().unmarshal_event(server_line(kind, obj, ascii_only=ascii_only))

    assert event is not None
    assert event["type"] == kind
    assert event["object"] == event["raw_object"] == obj
    assert json.loads(event["raw_text"]) == obj


@given(obj=OBJECTS)
def test_any_other_layout_parses_the_general_way_to_the_same_object(obj: dict[str, Any]):
    layouts = [
        json.dumps({"object": obj, "type": "ADDED"}),  # keys in the other order
        json.dumps({"type": "ADDED", "object": obj}, indent=1),  # not compact
        server_line("ADDED", obj)[:-1] + ',"extra":1}',  # another key after the object
    ]
    for line in layouts:
        event = RawWatch().unmarshal_event(line)
        assert event is not None
        assert event["object"] == obj
        assert "raw_text" not in event


def test_a_broken_line_in_the_servers_layout_is_undecodable_not_half_read():
    watch = RawWatch()

    assert watch.unmarshal_event('{"type":"ADDED","object":{"metadata":') is None
    assert watch.unmarshal_event('{"type":"ADDED","object":[1,2]}') is None
    assert watch.unmarshal_event('{"type":"ADDED","object":{}} trailing') is None


def test_the_published_data_is_the_servers_text_of_the_event():
    obj = new_event("BackOff", "Back-off restarting failed container \u00e9 <tag> & \u2028")
    line = server_line("ADDED", obj)
    event = RawWatch().unmarshal_event(line)
    assert event is not None

    verdict = make_filter().decide(
        "ADDED", event["object"], newer_than=NOW.replace(year=2000), text=event["raw_text"]
    )

    assert verdict.message is not None
    assert verdict.message.data == line[len('{"type":"ADDED","object":') : -1].encode()
    assert json.loads(verdict.message.data) == obj


def test_without_the_servers_text_the_object_is_encoded_as_before():
    obj = new_event("BackOff", "Back-off restarting failed container")

    verdict = make_filter().decide("ADDED", obj, newer_than=NOW.replace(year=2000))

    assert verdict.message is not None
    assert verdict.message.data == json.dumps(obj, separators=(",", ":")).encode()


def test_an_object_with_a_lone_surrogate_is_published_with_ascii_escapes_not_an_error():
    # A list item (no server text) whose note holds a lone surrogate, as the JSON escape
    # "\ud800" decodes: it has no UTF-8 form, so the same JSON is written with ASCII escapes.
    obj = json.loads(json.dumps(new_event("BackOff", "Back-off \ud800 restarting é")))

    verdict = make_filter().decide("ADDED", obj, newer_than=NOW.replace(year=2000))

    assert verdict.message is not None
    assert json.loads(verdict.message.data) == obj
    assert b"\\ud800" in verdict.message.data
