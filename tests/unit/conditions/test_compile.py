"""Conditions are compiled and type-checked when they load: mistakes never reach run time."""

from __future__ import annotations

import pytest

from khook_core.conditions import (
    MAX_CONDITION_CHARS,
    ConditionSyntaxError,
    compile_event_condition,
    compile_payload_condition,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "event.severty == 'error'",
            "unknown field event.severty (did you mean event.severity?) at column 6",
        ),
        (
            "event.resource.nme == 'web'",
            "unknown field event.resource.nme (did you mean event.resource.name?) at column 15",
        ),
        (
            "event.count > 1 &&\n  event.resouce.kind == 'Pod'",
            "unknown field event.resouce.kind (did you mean event.resource.kind?) at line 2",
        ),
        ("evnt.count > 1", "unknown field evnt.count"),
    ],
)
def test_an_unknown_field_is_rejected_with_the_field_it_likely_meant(text: str, message: str):
    with pytest.raises(
        ConditionSyntaxError,
        match="^" + message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)"),
    ):
        compile_event_condition(text)


@pytest.mark.parametrize(
    "text",
    [
        "event.count == 'three'",
        "event.tags.team > 3",
        "event.severity_rank >= 'error'",
        "event.timestamp > 5",
        "event.message + 1 == 'x'",
        "event.count && true",
        "size(event.count) > 1",
        "event.timestamp.getHours(3) > 1",
    ],
)
def test_a_type_error_is_rejected(text: str):
    with pytest.raises(ConditionSyntaxError, match="no matching overload"):
        compile_event_condition(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("event.tags.team", "gives string, not a bool"),
        ("event.count + 1", "gives int, not a bool"),
        ("event.count >", "Syntax error"),
        ("event.message.matches('^(a+)+$')", "matches() is not available"),
        ("", "empty"),
        ("   ", "empty"),
        ("true || " * 600 + "true", f"at most {MAX_CONDITION_CHARS}"),
    ],
)
def test_other_mistakes_are_rejected_with_a_reason(text: str, message: str):
    with pytest.raises(ConditionSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_event_condition(text)


def test_map_keys_and_dynamic_metadata_are_left_to_run_time():
    condition = compile_event_condition("event.tags.anything == 'x' || event.metadata.a.b > 1")
    assert condition.variables == ("event.metadata", "event.tags")


def test_only_conditions_over_mapped_fields_ask_for_the_mapping_row():
    assert compile_event_condition("event.severity == 'error'").needs_mapping
    assert compile_event_condition("has(event.tags.team)").needs_mapping
    assert compile_event_condition("event.internal_type == 'PodRestart'").needs_mapping
    assert not compile_event_condition("event.count > 2 && event.reason == 'x'").needs_mapping


def test_a_payload_condition_sees_payload_and_meta_but_not_event():
    compile_payload_condition("payload.lag >= 1000 && meta.topic == 'orders'")
    with pytest.raises(ConditionSyntaxError, match=r"unknown field event\.count"):
        compile_payload_condition("event.count > 1")
