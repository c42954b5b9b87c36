"""``Firing.trusted`` builds the very record the constructor builds, and refuses what the
constructor refuses."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime
from typing import Any

import pytest

from khook_core.state.base import DedupKey, Firing

REQUIRED: dict[str, Any] = {
    "key": DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|"),
    "hook": "shop/web",
    "event_id": "kubernetes:abc",
    "event_type": "pod-restart",
    "source": "kubernetes",
    "resource": "shop/Pod/web-0",
    "agent": "kagent/k8s-agent",
    "prompt_hash": "0123456789abcdef",
    "outcome": "dispatched",
    "at": datetime(2026, 1, 5, 10, 35, tzinfo=UTC),
}


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"task_id": "t-1", "extra": {"state": "working"}, "config_version": "v7"},
        {"error": "boom", "incident": "i-1", "task_state": "failed", "finding": "f"},
    ],
)
def test_trusted_is_the_constructors_record(given: dict[str, Any]):
    built, trusted = Firing(**REQUIRED, **given), Firing.trusted(**REQUIRED, **given)
    assert trusted == built
    assert vars(trusted) == vars(built)
    assert list(vars(trusted)) == [f.name for f in dataclasses.fields(Firing)]
    assert dataclasses.replace(trusted, outcome="resolved") == dataclasses.replace(
        built, outcome="resolved"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        trusted.outcome = "changed"  # type: ignore[misc]


def test_trusted_takes_every_field_in_order_with_the_constructors_defaults():
    params = inspect.signature(Firing.trusted).parameters
    assert list(params) == [f.name for f in dataclasses.fields(Firing)]
    for field in dataclasses.fields(Firing):
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default, field.name


def test_each_record_has_its_own_extra():
    first, second = Firing.trusted(**REQUIRED), Firing.trusted(**REQUIRED)
    assert first.extra == {}
    assert first.extra is not second.extra


@pytest.mark.parametrize(
    "values",
    [
        {**REQUIRED, "outcom": "typo"},
        {k: v for k, v in REQUIRED.items() if k != "at"},
    ],
)
def test_an_unknown_or_missing_field_is_refused(values: dict[str, Any]):
    with pytest.raises(TypeError):
        Firing(**values)
    with pytest.raises(TypeError):
        Firing.trusted(**values)
