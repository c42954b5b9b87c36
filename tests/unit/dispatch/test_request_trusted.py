"""``DispatchRequest.trusted`` builds the very request the constructor builds."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime
from typing import Any

import pytest

from khook_core.dispatch.base import DispatchRequest, Target
from khook_core.event import Event, EventId
from khook_core.state.base import DedupKey

VALUES: dict[str, Any] = {
    "event": Event.trusted(
        id=EventId("e"), source="s", type="t", timestamp=datetime(2026, 1, 5, tzinfo=UTC)
    ),
    "hook": "shop/web",
    "target": Target("webhook", url="https://example.test/hook"),
    "prompt": "p",
    "key": DedupKey("shop/web|s|t|//|"),
    "message_id": "khook-m",
    "context_id": "khook-c",
}


@pytest.mark.parametrize(
    "given", [{}, {"time_budget": 3.5, "verify": True, "push_url": "u", "push_token": "k"}]
)
def test_trusted_is_the_constructors_request(given: dict[str, Any]):
    built = DispatchRequest(**VALUES, **given)
    trusted = DispatchRequest.trusted(**VALUES, **given)
    assert trusted == built
    assert vars(trusted) == vars(built)
    assert list(vars(trusted)) == [f.name for f in dataclasses.fields(DispatchRequest)]
    headers = {"traceparent": "00-1-2-01"}
    assert dataclasses.replace(trusted, trace_headers=headers) == dataclasses.replace(
        built, trace_headers=headers
    )
    assert trusted.trace_headers is not DispatchRequest.trusted(**VALUES).trace_headers
    with pytest.raises(dataclasses.FrozenInstanceError):
        trusted.prompt = "changed"  # type: ignore[misc]


def test_trusted_takes_every_field_but_the_trace_headers_with_the_same_defaults():
    params = inspect.signature(DispatchRequest.trusted).parameters
    fields = [f for f in dataclasses.fields(DispatchRequest) if f.name != "trace_headers"]
    assert list(params) == [f.name for f in fields]
    for field in fields:
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default, field.name
