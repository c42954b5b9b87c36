"""Every condition example in docs/hooks.md compiles and means what its comment says."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from khook_core.conditions import compile_event_condition
from khook_core.event import Event, EventId, Resource, Severity
from tests.support.paths import REPO

DOC = (REPO / "docs" / "hooks.md").read_text()
_WHEN_LINE = re.compile(r"^when: .*$", re.MULTILINE)
DOC_EXAMPLES: list[str] = [yaml.safe_load(line)["when"] for line in _WHEN_LINE.findall(DOC)]

# A Monday, 10:31 UTC: 11:31 in Berlin, 05:31 in New York.
MONDAY = datetime(2026, 1, 5, 10, 31, tzinfo=UTC)


def event(**changes: Any) -> Event:
    base = Event(
        id=EventId("e1"),
        source="kubernetes",
        type="pod-restart",
        severity=Severity.WARNING,
        reason="BackOff",
        resource=Resource(kind="Pod", name="web-0", namespace="prod-shop"),
        timestamp=MONDAY,
        first_timestamp=MONDAY,
        count=1,
    )
    return base.model_copy(update=changes)


def cdc(after: dict[str, Any], before: dict[str, Any] | None = None, table: str = "payments"):
    return event(
        source="cdc",
        type="row-changed",
        tags={"db": "shop", "schema": "public", "table": table, "operation": "update"},
        metadata={"before": before, "after": after},
    )


# condition → (an event it matches, an event it does not match)
EXPECTED: dict[str, tuple[Event, Event]] = {
    DOC_EXAMPLES[0]: (event(severity=Severity.ERROR), event(severity=Severity.WARNING)),
    DOC_EXAMPLES[1]: (
        event(severity=Severity.CRITICAL, tags={"team": "payments"}, count=3),
        event(severity=Severity.CRITICAL, tags={"team": "payments"}, count=2),
    ),
    DOC_EXAMPLES[2]: (
        event(tags={"team": "checkout", "env": "prod"}),
        event(tags={"team": "checkout", "env": "staging"}),
    ),
    DOC_EXAMPLES[3]: (
        event(),
        event(resource=Resource(kind="Pod", name="debug-1", namespace="prod-shop")),
    ),
    DOC_EXAMPLES[4]: (
        event(),  # Monday 11:31 in Berlin
        event(timestamp=datetime(2026, 1, 5, 17, 5, tzinfo=UTC)),  # 18:05 in Berlin
    ),
    DOC_EXAMPLES[5]: (
        event(severity=Severity.CRITICAL),  # 05:31 in New York
        event(severity=Severity.CRITICAL, timestamp=datetime(2026, 1, 5, 15, tzinfo=UTC)),
    ),
    DOC_EXAMPLES[6]: (event(count=5), event(count=4)),
    DOC_EXAMPLES[7]: (
        event(count=3, first_timestamp=datetime(2026, 1, 5, 10, 22, tzinfo=UTC)),
        event(count=3, first_timestamp=datetime(2026, 1, 5, 10, 20, tzinfo=UTC)),
    ),
    DOC_EXAMPLES[8]: (
        cdc({"id": 7, "amount": 1250.5, "currency": "EUR"}),
        cdc({"id": 7, "amount": 999, "currency": "EUR"}),
    ),
    DOC_EXAMPLES[9]: (
        cdc({"status": "declined"}, before={"status": "authorised"}),
        cdc({"status": "declined"}),  # no old row: the guard keeps it false, not an error
    ),
}


def test_the_docs_show_ten_examples_and_each_has_a_case_here():
    assert len(DOC_EXAMPLES) == 10
    assert set(EXPECTED) == set(DOC_EXAMPLES)


@pytest.mark.parametrize("text", DOC_EXAMPLES, ids=[f"example-{i + 1}" for i in range(10)])
def test_a_doc_example_matches_its_event_and_not_the_other(text: str):
    condition = compile_event_condition(text)
    yes, no = EXPECTED[text]
    assert condition(yes) is True
    assert condition(no) is False


def test_the_example_of_the_opening_snippet_compiles():
    snippet = re.search(r"    when: (\".*\")\n", DOC)
    assert snippet is not None
    condition = compile_event_condition(yaml.safe_load(snippet[1]))
    assert condition(event(severity=Severity.ERROR, tags={"team": "payments"}, count=3))
