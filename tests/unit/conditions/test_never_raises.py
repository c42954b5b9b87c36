"""Whatever an event holds, a condition answers True, False or ConditionError: nothing else
reaches the pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core.conditions import ConditionError, compile_event_condition
from khook_core.event import Event, EventId, Resource, Severity
from tests.unit.conditions.test_doc_examples import DOC_EXAMPLES
from tests.unit.conditions.test_evaluate import EXPRESSIONS

CONDITIONS = [compile_event_condition(t) for t in [*EXPRESSIONS, *DOC_EXAMPLES]] + [
    compile_event_condition(t)
    for t in (
        "event.metadata.a.b.c[0].d > 1.5 || event.metadata.x.all(i, i > 0)",
        "event.metadata.list.map(x, x + 1).exists(y, y == 2)",
        "event.metadata.a / event.metadata.b > 0.5",
        "event.metadata.a - event.metadata.b > duration('1s')",
        "event.metadata.a < event.metadata.b",
        "string(event.metadata.a) == 'x' && size(event.metadata.a) > 0",
        "timestamp(event.metadata.a) > event.timestamp",
        "duration(event.metadata.a) > duration('1m')",
        "event.metadata.a in event.metadata.b",
        "event.metadata[event.message] == 1",
        "event.tags.all(k, event.tags.all(j, event.tags.all(l, k + j + l != '')))",
        "event.metadata.a.getHours(event.message) > 1",
        "-event.metadata.a < 0 && double(event.metadata.a) > 0.0 && uint(event.metadata.a) > 1u",
    )
]

weird_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats()  # NaN and infinities too
    | st.text()  # lone surrogates and control characters too
    | st.binary(max_size=8)
    | st.datetimes(timezones=st.just(UTC))
    | st.timedeltas()
    | st.builds(object)
    | st.frozensets(st.integers(), max_size=2)
)
weird_values = st.recursive(
    weird_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "c", "d", "x", "list", "workload"]), inner, max_size=4
        )
        | st.dictionaries(st.integers(-2, 2), inner, max_size=2)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    condition=st.sampled_from(CONDITIONS),
    tags=st.dictionaries(st.text(max_size=4), st.text(max_size=6), max_size=12),
    metadata=st.dictionaries(
        st.sampled_from(["a", "b", "x", "list", "workload", "before", "after"]),
        weird_values,
        max_size=5,
    ),
    count=st.integers(),
    message=st.text(max_size=20),
    when=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    earlier=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    severity=st.sampled_from(list(Severity)),
)
def test_a_condition_never_raises_into_the_pipeline(
    condition: Any,
    tags: dict[str, str],
    metadata: dict[str, Any],
    count: int,
    message: str,
    when: datetime,
    earlier: timedelta,
    severity: Severity,
) -> None:
    first = when - earlier if when - datetime(1, 1, 1, tzinfo=UTC) > earlier else when
    event = Event.trusted(
        id=EventId("e"),
        source="kubernetes",
        type="pod-restart",
        severity=severity,
        resource=Resource(kind="Pod", name=message, namespace="shop"),
        message=message,
        timestamp=when,
        first_timestamp=first,
        count=count,
        tags=tags,
        metadata=metadata,
    )
    outcome: object
    try:
        outcome = condition(event)
    except ConditionError as exc:
        outcome = exc
    assert outcome is True or outcome is False or str(outcome)
    assert isinstance(condition.seen(event), dict)


EXTREME = Event.trusted(
    id=EventId("e"),
    source="kubernetes",
    type="pod-restart",
    timestamp=datetime(9999, 12, 31, tzinfo=UTC),
    first_timestamp=datetime(1, 1, 1, tzinfo=UTC),
    metadata={"a": timedelta.max, "b": timedelta.min},
)


@pytest.mark.parametrize(
    "text",
    [
        "event.timestamp + duration('48h') > event.timestamp",
        "event.metadata.b - event.metadata.a < event.metadata.a",
        "event.metadata.a + event.metadata.a > event.metadata.b",
        "event.first_timestamp - duration('48h') < event.timestamp",
    ],
)
def test_time_arithmetic_past_the_representable_range_is_a_condition_error(text: str) -> None:
    with pytest.raises(ConditionError, match="out of range"):
        compile_event_condition(text)(EXTREME)
