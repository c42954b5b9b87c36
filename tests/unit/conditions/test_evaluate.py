"""Evaluation agrees with the CEL project's own evaluator, absorbs errors as CEL does, and is
bounded by the cost limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core.conditions import ConditionError, compile_event_condition, program
from khook_core.conditions.compiled import _environment
from khook_core.conditions.schema import EVENT_VARIABLES
from khook_core.event import Event, EventId, Resource, Severity

MONDAY = datetime(2026, 1, 5, 10, 31, tzinfo=UTC)

EXPRESSIONS = [
    "event.count >= 3",
    "event.count * 2 > 10",
    "event.count / 2 == 1",
    "event.count % 3 == 1",
    "-event.count < 0",
    "event.count + 9223372036854775800 > 0",
    "event.severity in ['error', 'critical']",
    "event.severity_rank >= 2",
    "event.tags.team == 'payments'",
    "has(event.tags.team)",
    "'team' in event.tags",
    "size(event.tags) > 1",
    "event.tags.exists(k, k.startsWith('t'))",
    "event.tags.all(k, event.tags[k] != '')",
    "event.tags.exists_one(k, k == 'team')",
    "event.tags.filter(k, k.size() > 2).size() >= 1",
    "event.tags.map(k, event.tags[k]).exists(v, v.contains('a'))",
    "event.metadata.a == 1",
    "event.metadata.a > 1",
    "event.metadata.a.b == 'x'",
    "has(event.metadata.a) && event.metadata.a == true",
    "event.metadata.list[0] == 1",
    "size(event.metadata.list) == 2",
    "event.metadata.list.exists(x, x == 2)",
    "1 in event.metadata.list",
    "event.metadata.a + 1 > 2",
    "event.metadata.a == null",
    "event.metadata.a != 'x'",
    "event.metadata.a in [1, 'x', true]",
    "event.timestamp.getHours('Europe/Berlin') >= 9",
    "event.timestamp.getDayOfWeek() == 1",
    "event.timestamp.getHours('+05:30') == 16",
    "event.timestamp - event.first_timestamp <= duration('10m')",
    "event.timestamp > timestamp('2026-01-01T00:00:00Z')",
    "event.first_timestamp.getFullYear() == 2026",
    "event.timestamp.getMonth() == 0 && event.timestamp.getDayOfMonth() == 4",
    "event.timestamp.getDate() == 5 && event.timestamp.getDayOfYear() == 4",
    "event.resource.name.startsWith('web') || event.resource.name.endsWith('-0')",
    "event.message.contains('OOM')",
    "size(event.message) < 10",
    "event.count > 2 ? event.tags.team == 'a' : event.tags.env == 'b'",
    "event.tags.team == 'a' || event.count > 2",
    "event.tags.team == 'a' && event.count > 2",
    "int(event.metadata.a) == 1",
    "double(event.count) / 2.0 > 1.5",
    "string(event.count) == '3'",
    "event.workload.kind == 'Deployment'",
    "[1, 2, 3].map(x, x * event.count).filter(y, y > 4).size() == 2",
    "{'a': event.count}['a'] == event.count",
    "event.status == 'firing' && event.source != 'cdc'",
    "duration('1h30m') > duration('90m') || duration('-1.5h') < duration('0')",
]


def event(**changes: Any) -> Event:
    base = Event(
        id=EventId("e1"),
        source="kubernetes",
        type="pod-restart",
        severity=Severity.ERROR,
        reason="BackOff",
        message="Memory cgroup out of memory: OOM",
        resource=Resource(kind="Pod", name="web-0", namespace="shop"),
        timestamp=MONDAY,
        first_timestamp=MONDAY - timedelta(minutes=5),
        count=3,
        tags={"team": "payments", "env": "prod"},
        metadata={"a": 1, "list": [1, 2], "workload": {"kind": "Deployment", "name": "web"}},
    )
    return base.model_copy(update=changes)


EVENTS = {
    "plain": event(),
    "no-tags": event(tags={}, count=1, severity=Severity.INFO),
    "string-metadata": event(metadata={"a": "x", "list": ["1"]}, count=-4),
    "nested-metadata": event(metadata={"a": {"b": "x"}, "list": []}, tags={"team": "a"}),
    "null-metadata": event(metadata={"a": None, "list": None, "workload": "not an object"}),
    "double-metadata": event(metadata={"a": 1.0, "list": [1.0, 2.5]}, count=9),
    "bool-metadata": event(metadata={"a": True, "list": [True]}, tags={"env": "b"}),
    "late-first": event(first_timestamp=MONDAY - timedelta(hours=1), timestamp=MONDAY),
    "old": event(timestamp=datetime(1999, 12, 31, 23, 59, tzinfo=UTC), first_timestamp=None),
}


def reference(text: str, ev: Event) -> object:
    """What cel-expr-python's own evaluator answers: a bool, or "error"."""
    data = {v.name: v.read(ev) for v in EVENT_VARIABLES}
    value = _environment("event").compile(text).eval(data=data)
    return "error" if value.type().name() == "ERROR" else value.plain_value()


def ours(text: str, ev: Event) -> object:
    try:
        return compile_event_condition(text)(ev)
    except ConditionError:
        return "error"


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_expression_agrees_with_the_cel_reference_evaluator(name: str):
    ev = EVENTS[name]
    assert {t: ours(t, ev) for t in EXPRESSIONS} == {t: reference(t, ev) for t in EXPRESSIONS}


json_scalars = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=5)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)
tag_keys = st.sampled_from(["team", "env", "t", "x"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.sampled_from(EXPRESSIONS),
    tags=st.dictionaries(tag_keys, st.sampled_from(["a", "b", "payments", ""]), max_size=4),
    metadata=st.dictionaries(st.sampled_from(["a", "list", "workload"]), json_values, max_size=3),
    count=st.integers(-10, 10),
    severity=st.sampled_from(list(Severity)),
    minutes=st.integers(0, 60 * 24 * 8),
)
def test_random_events_give_the_reference_answer(
    text: str,
    tags: dict[str, str],
    metadata: dict[str, Any],
    count: int,
    severity: Severity,
    minutes: int,
):
    ev = event(
        tags=tags,
        metadata=metadata,
        count=count,
        severity=severity,
        timestamp=MONDAY + timedelta(minutes=minutes),
    )
    assert ours(text, ev) == reference(text, ev)


def test_a_decided_or_and_and_absorb_an_error_as_cel_does():
    missing = "event.tags.missing == 'x'"
    assert compile_event_condition(f"{missing} || event.count == 3")(event()) is True
    assert compile_event_condition(f"event.count == 3 || {missing}")(event()) is True
    assert compile_event_condition(f"{missing} && event.count == 4")(event()) is False
    with pytest.raises(ConditionError, match="no such key: 'missing'"):
        compile_event_condition(f"{missing} || event.count == 4")(event())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("event.count / 0 == 1", "division by zero"),
        ("event.count % 0 == 1", "modulus by zero"),
        ("event.count + 9223372036854775807 > 0", "integer overflow"),
        ("event.tags.nope == 'x'", "no such key: 'nope'"),
        ("event.metadata.list[5] == 1", "index 5 out of range"),
        ("event.metadata.a.b == 1", "no field 'b' on a int"),
        ("event.timestamp.getHours('Mars/Olympus') == 1", "unknown time zone"),
        ("int(event.message) == 1", "int() of"),
    ],
)
def test_an_evaluation_error_is_a_condition_error_with_the_reason(text: str, message: str):
    with pytest.raises(
        ConditionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        compile_event_condition(text)(event())


def test_the_cost_limit_stops_a_macro_over_a_large_event():
    nested = compile_event_condition("event.tags.all(k, event.tags.all(j, k != '' && j != ''))")
    small = event(tags={f"t{i}": "v" for i in range(30)})  # 30 + 30 * 30 = 930 iterations
    assert nested(small) is True
    large = event(tags={f"t{i}": "v" for i in range(40)})  # 40 + 40 * 40 = 1,640
    with pytest.raises(ConditionError, match=f"cost limit: more than {program.MAX_ITERATIONS}"):
        nested(large)


def test_the_cost_limit_is_not_absorbed_by_a_macro_that_ignores_errors():
    # all() treats an error in its body as "not false"; the cost limit must still stop it.
    huge = event(metadata={"list": list(range(5_000))})
    condition = compile_event_condition(
        "event.metadata.list.all(x, event.metadata.list.all(y, x >= 0))"
    )
    with pytest.raises(ConditionError, match="cost limit"):
        condition(huge)


def test_seen_reports_the_values_the_condition_read():
    condition = compile_event_condition("event.count >= 3 && event.tags.team == 'payments'")
    assert condition.seen(event()) == {
        "event.count": 3,
        "event.tags": {"team": "payments", "env": "prod"},
    }
