"""Hypothesis strategies: arbitrary JSON, and real payloads with one part broken.

Random JSON alone rarely gets past a normaliser's first check, so ``mutations`` starts from
the real sample payloads and replaces or deletes one node anywhere in them: that reaches the
deep field handling where an unexpected type would otherwise escape as a raw exception.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

from khook_core.errors import InvalidEventError
from khook_core.event import Event
from khook_core.mapping import KEBAB_CASE
from khook_core.sources.base import Dropped

VOCABULARY = [
    "alerts",
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "alertname",
    "type",
    "resource",
    "message",
    "severity",
    "tags",
    "metadata",
    "timestamp",
    "id",
    "count",
    "name",
    "kind",
    "namespace",
    "repository",
    "full_name",
    "workflow_run",
    "deployment_status",
    "deployment",
    "conclusion",
    "state",
    "group",
    "lag",
    "topic",
    "partition",
    "leader",
    "offline",
    "op",
    "before",
    "after",
    "source",
    "payload",
    "schema",
    "table",
    "change",
    "kind",
    "action",
    "columns",
    "identity",
    "columnnames",
    "columnvalues",
    "oldkeys",
    "keynames",
    "keyvalues",
    "lsn",
    "ts_ms",
    "xid",
    "nextlsn",
    "value",
    "zen",
    "groupKey",
    "commonLabels",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "firing",
            "resolved",
            "u",
            "c",
            "d",
            "r",
            "failed",
            "I",
            "U",
            "D",
            "B",
            "insert",
            "2026-01-05T10:20:00Z",
            "-1",
            "",
        ]
    )
)
keys = st.sampled_from(VOCABULARY) | st.text(max_size=8)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


@st.composite
def mutations(draw: st.DrawFn, documents: list[Any]) -> Any:
    """One of ``documents`` with one node replaced by random JSON, or deleted."""
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    paths = _paths(doc)
    path = draw(st.sampled_from(paths))
    if not path:
        return draw(json_values)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return doc


attributes = st.dictionaries(
    st.sampled_from(
        [
            "kafka.topic",
            "kafka.partition",
            "kafka.offset",
            "kafka.timestamp",
            "key",
            "x-github-event",
            "http.path",
            "khook.endpoint",
        ]
    )
    | st.text(max_size=6),
    st.text(max_size=12)
    | st.sampled_from(
        ["orders", "0", "17", "1767609071000", "/github", "workflow_run", "ping", "/"]
    ),
    max_size=5,
)


def check_normalizer(
    normalize: Callable[[Any, Mapping[str, str]], list[Event]], raw: Any, attrs: Mapping[str, str]
) -> None:
    """The property every source must keep: events, or a clean InvalidEventError/Dropped."""
    error: InvalidEventError | None = None
    try:
        events = normalize(raw, attrs)
    except Dropped:
        return
    except InvalidEventError as exc:
        error = exc
    if error is not None:
        assert error.message
        assert 400 <= error.status < 500
        return
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, Event)
        assert KEBAB_CASE.match(event.type), event.type
        assert event.timestamp.tzinfo is not None
