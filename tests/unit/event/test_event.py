from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from khook_core.event import Event, EventId, Resource, Severity, Workload, stable_id
from khook_core.redaction.redactor import Redactor
from tests.support.k8s_events import core_event, new_event, source


@pytest.mark.parametrize(
    "raw",
    [
        core_event(count=7),
        new_event(series={"count": 3, "lastObservedTime": "2026-01-05T10:33:00.000000Z"}),
    ],
)
def test_trusted_construction_equals_validated_construction(raw: dict[str, object]):
    (event,) = source().normalize(raw, {"khook.cluster": "prod"})
    validated = Event.model_validate(event.model_dump())
    assert event == validated
    assert event.model_dump() == validated.model_dump()
    assert list(event.__dict__) == list(validated.__dict__)  # same field order
    assert json.loads(event.model_dump_json()) == json.loads(validated.model_dump_json())


def test_trusted_events_get_fresh_mutable_defaults():
    a = Event.trusted(id=EventId("a"), source="s", type="t", timestamp=datetime.now(UTC))
    b = Event.trusted(id=EventId("b"), source="s", type="t", timestamp=datetime.now(UTC))
    assert a.tags is not b.tags
    assert a.resource == Resource()


def test_evolve_is_model_copy_with_changes():
    event = Event(id=EventId("a"), source="s", type="t", timestamp=datetime.now(UTC))
    changed = event.evolve(severity=Severity.ERROR, tags={"a": "b"})
    assert changed == event.model_copy(update={"severity": Severity.ERROR, "tags": {"a": "b"}})
    assert event.severity is Severity.WARNING  # the original is untouched
    assert "severity" in changed.model_fields_set


def test_stable_ids_are_deterministic_and_distinct():
    assert stable_id("k", "a", 1) == stable_id("k", "a", 1)
    assert stable_id("k", "a", 1) != stable_id("k", "a", 2)
    assert stable_id("k", "a|b") != stable_id("k", "a", "b")


def test_severity_order():
    assert [s.rank for s in Severity] == [0, 1, 2, 3]


def test_a_trusted_resource_copies_with_changes_like_a_validated_one():
    """Redaction masks a resource name with ``model_copy(update=...)``, which adds to the
    copy's set fields: a trusted Resource's must be a set of its own."""
    trusted = Resource.trusted("Pod", "web-0", "shop", "a9d0", "v1")
    validated = Resource(kind="Pod", name="web-0", namespace="shop", uid="a9d0", api_version="v1")
    changed = trusted.model_copy(update={"name": "[masked]"})
    assert changed == validated.model_copy(update={"name": "[masked]"})
    assert trusted.name == "web-0"
    assert changed.model_fields_set == validated.model_fields_set


@pytest.mark.parametrize("inferred", [True, False])
def test_a_trusted_workload_is_the_validated_one(inferred: bool):
    trusted = Workload.trusted("c", "shop", "StatefulSet", "web", inferred=inferred)
    validated = Workload(
        cluster="c", namespace="shop", kind="StatefulSet", name="web", inferred=inferred
    )
    assert trusted == validated
    assert hash(trusted) == hash(validated)
    assert trusted.model_fields_set == validated.model_fields_set
    assert trusted.model_dump() == validated.model_dump()
    changed = trusted.model_copy(update={"name": "api"})
    assert changed == validated.model_copy(update={"name": "api"})
    assert trusted.name == "web"


def test_an_event_about_a_resource_named_like_a_secret_is_redacted():
    (event,) = source().normalize(core_event(name="AKIAIOSFODNN7EXAMPLE"), {})
    (redacted,) = Redactor(b"k" * 32).events([event])
    assert "AKIAIOSFODNN7EXAMPLE" not in redacted.resource.name
    assert redacted.resource.kind == "Pod"
