"""The field-mapping language shared by webhook endpoints, Kafka rules and CDC rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from khook_core.errors import InvalidEventError
from khook_core.event import Severity
from khook_core.sources.fieldmap import (
    MISSING,
    Condition,
    FieldRule,
    Template,
    decode_value,
    kebab_case,
    lookup,
    time_of,
    validate_generic,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("KubePodCrashLooping", "kube-pod-crash-looping"),
        ("HighCPU", "high-cpu"),
        ("HTTPErrorRate", "http-error-rate"),
        ("disk_full", "disk-full"),
        ("high-cpu", "high-cpu"),
        ("Target Down!", "target-down"),
        ("KubeAPIErrorBudgetBurn", "kube-api-error-budget-burn"),
        ("etcdHighNumberOfFailedGRPCRequests", "etcd-high-number-of-failed-grpc-requests"),
        ("NodeFilesystemAlmostOutOfSpace", "node-filesystem-almost-out-of-space"),
        ("Disk90Percent", "disk90-percent"),
    ],
)
def test_kebab_case_turns_alert_names_into_event_types(name: str, expected: str) -> None:
    assert kebab_case(name) == expected


def test_lookup_walks_objects_and_lists_and_reports_missing() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x": None}
    assert lookup(doc, "a.b.1.c") == 2
    assert lookup(doc, "a.b.-1.c") == 2
    assert lookup(doc, "a.b.5.c") is MISSING
    assert lookup(doc, "a.c") is MISSING
    assert lookup(doc, "x") is None
    assert lookup(doc, "@topic", {"topic": "orders"}) == "orders"
    assert lookup("text", "a") is MISSING


def test_a_single_placeholder_template_keeps_the_json_type() -> None:
    assert Template.parse("{lag}").render({"lag": 15}) == 15
    assert Template.parse("{status.maxlag}").render({"status": {"maxlag": {"p": 1}}}) == {"p": 1}


def test_a_composite_template_is_text_and_missing_parts_make_it_missing() -> None:
    template = Template.parse("{topic}-{partition}")
    assert template.render({"topic": "orders", "partition": 3}) == "orders-3"
    assert template.render({"topic": "orders"}) is MISSING


def test_alternatives_take_the_first_present_non_null_value() -> None:
    template = Template.parse("{group|status.group}")
    assert template.render({"status": {"group": "g2"}}) == "g2"
    assert template.render({"group": None, "status": {"group": "g2"}}) == "g2"
    assert template.render({"group": "g1", "status": {"group": "g2"}}) == "g1"


@pytest.mark.parametrize("text", ["{a", "a}", "{a}{", "{a b}", "{a..b}", "{}", "{a|}"])
def test_malformed_templates_are_rejected_at_load(text: str) -> None:
    with pytest.raises(ValueError, match=r"template|path"):
        Template.parse(text)


@pytest.mark.parametrize(
    ("spec", "doc", "expected"),
    [
        (-1, {"leader": -1}, True),
        (-1, {"leader": 2}, False),
        ([1, 2], {"leader": 2}, True),
        ({"gte": 1000}, {"leader": 1000}, True),
        ({"gt": 1000}, {"leader": 1000}, False),
        ({"lt": 5}, {"leader": "3"}, False),  # no number coercion from strings
        ({"exists": True}, {}, False),
        ({"exists": False}, {}, True),
        ({"ne": "x"}, {}, True),
        ({"notIn": ["a"]}, {"leader": "b"}, True),
        ({"contains": "OOM"}, {"leader": "container was oomkilled"}, True),
        ({"contains": 3}, {"leader": [1, 3]}, True),
        ("FAILED", {"leader": "failed"}, True),  # strings compare case-insensitively
        (True, {"leader": 1}, False),  # a boolean is not a number
        (1, {"leader": 1.0}, True),
    ],
)
def test_conditions(spec: Any, doc: dict[str, Any], expected: bool) -> None:
    conditions = Condition.compile("leader", spec)
    assert all(c.test(doc) for c in conditions) is expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"between": 1}, "unknown operator 'between'"),
        ({"in": "a"}, "in takes a list"),
        ({"gte": "10"}, "gte takes a number"),
    ],
)
def test_bad_conditions_are_rejected_with_the_operator_named(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Condition.compile("lag", spec)


def test_a_field_rule_builds_a_generic_event() -> None:
    rule = FieldRule.model_validate(
        {
            "when": {"level": ["ERROR", "FATAL"]},
            "fields": {
                "type": "{kind}",
                "resource.name": "{service}",
                "message": "{msg}",
                "severity": "{level}",
                "tags.team": "{owner.team}",
                "metadata.raw": "{extra}",
                "count": "{n}",
            },
            "severityMap": {"FATAL": "critical"},
        }
    )
    doc = {
        "kind": "PaymentFailed",
        "service": "checkout",
        "msg": "boom",
        "level": "FATAL",
        "owner": {"team": 7},
        "extra": {"a": 1},
        "n": 3,
    }
    assert rule.matches(doc)
    generic = validate_generic(rule.render(doc))
    assert generic.type == "payment-failed"
    assert generic.resource.name == "checkout"
    assert generic.severity is Severity.CRITICAL
    assert generic.tags == {"team": "7"}
    assert generic.metadata == {"raw": {"a": 1}}
    assert generic.count == 3
    assert not rule.matches({"level": "INFO"})


def test_a_rule_without_a_type_names_the_missing_template_value() -> None:
    rule = FieldRule.model_validate({"fields": {"type": "{kind}"}})
    with pytest.raises(InvalidEventError) as caught:
        rule.render({})
    assert caught.value.status == 422
    assert caught.value.field == "type"
    assert "'{kind}' found no value" in caught.value.message


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"fields": {"colour": "{x}"}}, "unknown event field 'colour'"),
        ({"fields": {"message": "{x"}}, "unbalanced braces"),
        ({"typeMap": {"X": "Not Kebab"}}, "not a kebab-case event type"),
        ({"eventType": "NotKebab"}, "String should match pattern"),
        ({"when": {"a": {"nope": 1}}}, "unknown operator"),
    ],
)
def test_bad_rules_fail_at_load_naming_the_problem(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FieldRule.model_validate(rule)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-05T10:20:00Z", "2026-01-05T10:20:00+00:00"),
        ("2026-01-05 10:31:11.046065+00", "2026-01-05T10:31:11.046065+00:00"),
        (1767609071, "2026-01-05T10:31:11+00:00"),
        (1767609071000, "2026-01-05T10:31:11+00:00"),
        (None, None),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_times_are_rfc3339_or_unix_seconds_or_milliseconds(
    value: Any, expected: str | None
) -> None:
    parsed = time_of(value, "t")
    assert (parsed.isoformat() if parsed else None) == expected


@pytest.mark.parametrize("value", [True, "yesterday", 10**400, {"a": 1}])
def test_bad_times_are_a_422_naming_the_field(value: Any) -> None:
    with pytest.raises(InvalidEventError) as caught:
        time_of(value, "alerts[0].startsAt")
    assert (caught.value.status, caught.value.field) == (422, "alerts[0].startsAt")


def test_decode_value_reads_json_text_ndjson_and_bytes() -> None:
    assert decode_value(b'{"a": 1}') == {"a": 1}
    assert decode_value('{"a": 1}\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    assert decode_value("plain text") == "plain text"
    assert decode_value("{broken") == "{broken"
    assert decode_value(b"") == ""
    with pytest.raises(InvalidEventError, match="neither JSON nor UTF-8"):
        decode_value(b"\xff\xfe")


def test_a_list_index_of_other_digits_is_no_match_not_a_crash() -> None:
    from khook_core.sources.fieldmap import MISSING, lookup

    assert lookup({"items": ["a", "b"]}, "items.¹") is MISSING
    assert lookup({"items": ["a", "b"]}, "items.1") == "b"
