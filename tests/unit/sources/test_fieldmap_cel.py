"""A field-mapping rule's ``when`` written in CEL, beside the value-comparison form."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from khook_core.event import Severity
from khook_core.sources.base import Dropped
from khook_core.sources.fieldmap import FieldRule
from khook_core.sources.kafka import KafkaSource
from tests.support.sources import make_source

META = {"topic": "app.errors", "headers": {"x-github-event": "workflow_run"}}


def rule(when: Any) -> FieldRule:
    return FieldRule.model_validate(
        {"when": when, "eventType": "app-error", "fields": {"message": "{msg}"}}
    )


def test_a_cel_when_matches_over_payload_and_meta() -> None:
    cel = rule("payload.level in ['ERROR', 'FATAL'] && meta.topic == 'app.errors'")
    assert cel.matches({"level": "FATAL", "msg": "x"}, META)
    assert not cel.matches({"level": "INFO"}, META)
    assert not cel.matches({"level": "FATAL"}, {**META, "topic": "app.audit"})


def test_a_cel_when_that_has_no_result_means_the_rule_does_not_apply() -> None:
    cel = rule("payload.lag >= 1000")
    assert not cel.matches({"group": "orders"}, META)  # no lag key
    assert not cel.matches({"lag": "lots"}, META)  # a string is not a number
    assert not cel.matches("a plain text record", META)
    assert cel.matches({"lag": 1500}, META)
    assert rule("has(payload.lag) && payload.lag >= 1000").matches({"lag": 1000}, None)


def test_cel_compares_strings_exactly_where_the_value_form_ignores_case() -> None:
    assert rule({"level": "error"}).matches({"level": "ERROR"}, META)
    assert not rule("payload.level == 'error'").matches({"level": "ERROR"}, META)


def test_the_value_comparison_form_still_works() -> None:
    old = rule({"lag": {"gte": 1000}, "@topic": "app.errors"})
    assert old.matches({"lag": 1000}, META)
    assert not old.matches({"lag": 999}, META)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("payload.lag >=", "Syntax error"),
        ("size(payload.msg)", "gives int, not a bool"),
        ("event.count > 1", "unknown field event.count"),
        ("payload.msg.matches('x+')", "matches() is not available"),
    ],
)
def test_a_cel_when_that_does_not_compile_fails_at_load(when: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rule(when)


def test_a_kafka_rule_selects_records_with_a_cel_when() -> None:
    source: KafkaSource = make_source(
        KafkaSource,
        {
            "rules": [
                {
                    "topic": "app.*",
                    "when": "payload.level in ['ERROR', 'FATAL'] && payload.retries > 2",
                    "eventType": "consumer-lag",
                    "fields": {
                        "resource.kind": "Service",
                        "resource.name": "{service}",
                        "message": "{msg}",
                        "severity": "{level}",
                    },
                    "severityMap": {"FATAL": "critical"},
                },
            ]
        },
    )
    attributes = {
        "kafka.topic": "app.errors",
        "kafka.partition": "0",
        "kafka.offset": "5",
        "kafka.timestamp": "1767609071000",
    }
    payload = {"service": "checkout", "msg": "timeout", "level": "FATAL", "retries": 3}
    [event] = source.normalize(payload, attributes)
    assert (event.resource.name, event.severity) == ("checkout", Severity.CRITICAL)
    with pytest.raises(Dropped, match="no-rule"):
        source.normalize({**payload, "retries": 1}, attributes)
