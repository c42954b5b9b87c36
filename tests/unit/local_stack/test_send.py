"""``khook send`` helpers: timestamp shifting, payload files, producer attributes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from khook_core.timeshift import newest, shift_to_now
from khook_local import stackfile
from khook_local.send import (
    SendError,
    default_attributes,
    load,
    parse_attributes,
    running_stack,
    shifted,
)
from khook_local.stackfile import StackInfo
from tests.support.paths import REPO

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_the_newest_timestamp_becomes_now_and_gaps_and_formats_are_kept():
    payloads = [
        {"lastTimestamp": "2026-01-05T10:31:12Z", "firstTimestamp": "2026-01-05T10:20:00Z"},
        {
            "eventTime": "2026-01-05T10:33:00.123456Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "nested": [{"at": "2026-01-05T11:33:00+01:00"}],
            "not": "2026-01-05",
            "n": 1767609071,
        },
    ]
    moved, delta = shift_to_now(payloads, NOW)

    assert delta == NOW - datetime(2026, 1, 5, 10, 33, 0, 123456, tzinfo=UTC)
    assert moved[1]["eventTime"] == "2026-11-26T12:00:00.000000Z"
    assert moved[0]["lastTimestamp"] == "2026-11-26T11:58:11Z"  # 108.1 s before, whole seconds
    assert moved[0]["firstTimestamp"] == "2026-11-26T11:46:59Z"
    assert moved[1]["nested"][0]["at"] == "2026-11-26T12:59:59+01:00"
    assert moved[1]["endsAt"] == "0001-01-01T00:00:00Z"  # a sentinel, not a moment
    assert (moved[1]["not"], moved[1]["n"]) == ("2026-01-05", 1767609071)
    assert newest(moved) == NOW


def test_payloads_without_timestamps_are_left_alone():
    assert shift_to_now([{"a": 1}, "text"], NOW) == ([{"a": 1}, "text"], timedelta(0))


def test_a_json_document_is_one_payload_and_json_lines_are_one_each(tmp_path: Path):
    doc = tmp_path / "one.json"
    doc.write_text('{\n  "a": [1, 2]\n}\n')
    lines = tmp_path / "many.jsonl"
    lines.write_text('{"a": 1}\n\nnot json\n{"timestamp": "2026-01-05T10:00:00Z"}\n')

    [one] = load(doc)
    many = load(lines)

    assert (one.label, one.doc) == ("one.json", {"a": [1, 2]})
    assert [p.label for p in many] == ["many.jsonl:1", "many.jsonl:3", "many.jsonl:4"]
    assert many[1].doc is None
    assert many[1].body == b"not json"
    moved, delta = shifted(many)
    assert delta > timedelta(0)
    assert moved[1] == many[1]
    assert json.loads(moved[2].body)["timestamp"] != "2026-01-05T10:00:00Z"


def test_producer_attributes_for_kubernetes_and_kafka():
    [event] = load(REPO / "config" / "samples" / "kafka" / "consumer-lag.json")
    kafka = default_attributes("kafka", event, 1)
    assert kafka["kafka.topic"] == "consumer-lag"
    assert kafka["kafka.partition"] == "0"
    assert kafka["kafka.offset"].isdigit()
    assert kafka["kafka.timestamp"].isdigit()

    first = load(REPO / "config" / "samples" / "kubernetes" / "events.jsonl")[0]
    assert default_attributes("kubernetes", first, 1) == {
        "khook.source": "kubernetes",
        "khook.cluster": "local",
        "khook.api": "v1",
        "khook.namespace": "default",
        "khook.reason": "BackOff",
        "khook.type": "Warning",
    }
    assert default_attributes("cdc", first, 1) == {}


def test_attribute_overrides_need_a_key_and_an_equals_sign():
    assert parse_attributes(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(SendError):
        parse_attributes(["novalue"])


def test_sending_without_a_running_stack_says_how_to_start_one(tmp_path: Path):
    with pytest.raises(SendError, match="make run"):
        running_stack(tmp_path)
    stackfile.write(
        tmp_path,
        StackInfo(
            pid=2**22 + 12345, started="x", ready=True, state_dir=str(tmp_path), config_dir="config"
        ),
    )
    with pytest.raises(SendError, match="stale"):
        running_stack(tmp_path)
