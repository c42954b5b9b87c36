"""``prompt.event_block`` writes a firing's data block field by field: it must be the very text
``data_block(event_data(...))`` builds from the dict, for every event, whatever its text; and
``render_hashed``'s hash, taken over the prompt's parts, must be ``prompt_hash`` of the prompt."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core import prompt
from khook_core.event import Event, EventId, Resource, Severity
from tests.unit.prompt import render_corpus

AT = datetime(2026, 1, 5, 10, 31, 12, tzinfo=UTC)


def by_dict(event: Event, extra: dict[str, Any] | None = None) -> str:
    return prompt.data_block(prompt.event_data(event, extra))


@pytest.mark.parametrize("name", sorted(render_corpus.events()))
def test_every_corpus_event_gets_the_dicts_block(name: str):
    event = render_corpus.events()[name]
    assert prompt.event_block(event) == by_dict(event)
    assert prompt.event_block(event, render_corpus.HELD) == by_dict(event, render_corpus.HELD)


@pytest.mark.parametrize("template", sorted(render_corpus.TEMPLATES))
def test_the_hash_of_the_parts_is_the_prompts(template: str):
    compiled = prompt.compile_template(render_corpus.TEMPLATES[template])
    for event in render_corpus.events().values():
        for extra, note in ((None, ""), (render_corpus.HELD, render_corpus.NOTE)):
            rendered = prompt.render(compiled, event, extra, note)
            assert prompt.render_hashed(compiled, event, extra, note) == (
                rendered,
                prompt.prompt_hash(rendered),
            )


def test_a_count_that_is_no_plain_integer_gets_the_dicts_block():
    event = Event.trusted(
        id=EventId("e"), source="s", type="t", timestamp=AT, count=True, tags={"a": "b"}
    )
    assert '"count":true' in prompt.event_block(event)
    assert prompt.event_block(event) == by_dict(event)


# Any character, with the ones escaping treats apart (DEL, quotes, backslash, controls,
# bidi and non-ASCII) drawn often, at lengths around every cap.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('\x7f"\\\n\t\x00\u202e\u200bжé😀 aZ9'), st.characters(codec="utf-8")
    ),
    max_size=40,
) | st.sampled_from(["", "x" * 256, "x" * 257, "\x7f" * 300, "m" * 4000, "m" * 4001])
FLAT = st.one_of(TEXT, st.integers(), st.none(), st.booleans())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    source=TEXT,
    kind=TEXT,
    reason=TEXT,
    message=TEXT,
    resource=st.tuples(TEXT, TEXT, TEXT, TEXT, TEXT),
    tags=st.dictionaries(TEXT, TEXT, max_size=4),
    metadata=st.dictionaries(TEXT, FLAT | st.lists(FLAT, max_size=3), max_size=4),
    count=st.integers(),
    status=st.sampled_from(["firing", "resolved"]),
    severity=st.sampled_from(list(Severity)),
    first=st.none() | st.just(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
)
def test_any_event_gets_the_dicts_block(
    source: str,
    kind: str,
    reason: str,
    message: str,
    resource: tuple[str, str, str, str, str],
    tags: dict[str, str],
    metadata: dict[str, Any],
    count: int,
    status: str,
    severity: Severity,
    first: datetime | None,
):
    event = Event.trusted(
        id=EventId("e"),
        source=source,
        type=kind,
        reason=reason,
        message=message,
        resource=Resource.trusted(*resource),
        tags=tags,
        metadata=metadata,
        count=count,
        status=status,
        severity=severity,
        timestamp=AT,
        first_timestamp=first,
    )
    assert prompt.event_block(event) == by_dict(event)
