"""hypothesis: redaction never raises, never grows a value beyond its cap, and masking masked
text changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core.event import Event
from khook_core.redaction.redactor import MAX_MASKED_CHARS, Redactor
from khook_core.redaction.rules import RedactRules
from tests.support.credentials import corpus
from tests.support.strategies import json_values

KEY = b"p" * 32
REDACTOR = Redactor(KEY)
PII = Redactor(KEY, {"webhook": RedactRules(pii=["email", "phone", "ip"])})
PIECES = [c.text for c in corpus()] + [
    "password=",
    "token: ",
    "Bearer ",
    "://u:",
    "@",
    "[redacted:",
    "]",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "eyJ",
    ".",
    "AKIA",
    "\n",
    '"',
    "'",
    "=",
    ":",
    "&",
    "…",
    "sig=",
    "user@example.com",
    "+1 415 555 0100",
    "10.0.0.1",
    "fe80::1",
]
# Text built from pieces of credentials and their syntax, so the detectors' edges are hit.
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=20), max_size=12).map("".join)


def cap(text: str) -> int:
    return max(len(text), MAX_MASKED_CHARS)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_redaction_is_idempotent_and_capped(text: str) -> None:
    once = REDACTOR.text(text)
    assert len(once) <= cap(text)
    assert REDACTOR.text(once) == once


@settings(max_examples=300, deadline=None)
@given(texts)
def test_personal_data_masking_is_idempotent_and_capped(text: str) -> None:
    pattern = PII.rules["webhook"]
    assert pattern.pii
    event = Event(
        id="webhook:1",
        source="webhook",
        type="x",
        message=text,
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
    )
    once, _ = PII.explain(event)
    assert len(once.message) <= cap(text)
    again, found = PII.explain(once)
    assert again.message == once.message
    assert found == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, json_values, texts)
def test_any_event_is_redacted_without_raising(metadata: Any, tags: Any, text: str) -> None:
    event = Event(
        id="webhook:1",
        source="cdc",
        type="x",
        message=text,
        reason=text[:40],
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
        metadata={"before": metadata, "after": tags, "x": [text]},
        tags={"token": text, "k": text},
    )
    once, _ = REDACTOR.explain(event)
    again, found = REDACTOR.explain(once)
    assert again.model_dump() == once.model_dump()
    assert found == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, texts)
def test_a_hooks_personal_data_masking_never_raises_and_is_idempotent(
    metadata: Any, text: str
) -> None:
    event = Event(
        id="webhook:1",
        source="webhook",
        type="x",
        message=text,
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
        metadata={"body": metadata, "x": [text]},
        tags={"k": text},
    )
    redacted = REDACTOR.events([event])[0]
    once = REDACTOR.pii(redacted, ["email", "phone", "ip"])
    assert len(once.message) <= cap(text)
    again = REDACTOR.pii(once, ["email", "phone", "ip"])
    assert again.model_dump() == once.model_dump()
