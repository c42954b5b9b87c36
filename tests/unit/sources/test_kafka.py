"""The kafka source: presets, topic rules and the Pub/Sub sink's attributes; the function."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from khook_core.errors import InvalidEventError
from khook_core.event import Severity
from khook_core.runtime import get_runtime
from khook_core.sources.base import Dropped
from khook_core.sources.kafka import KafkaConfig, KafkaSource
from khook_core.transport import pubsub
from tests.support.sources import make_source, push_body, sample
from tests.support.strategies import attributes, check_normalizer, json_values, mutations

LAG = sample("kafka", "consumer-lag.json")
BURROW = sample("kafka", "burrow-consumer-status.json")
OFFLINE = sample("kafka", "partition-offline.json")
SAMPLES = [LAG, BURROW, OFFLINE]


def record(
    topic: str = "ops.monitoring", partition: int = 0, offset: int = 17, **extra: str
) -> dict[str, str]:
    """The attributes the CloudPubSubSinkConnector sets with metadata.publish=true."""
    return {
        "kafka.topic": topic,
        "kafka.partition": str(partition),
        "kafka.offset": str(offset),
        "kafka.timestamp": "1767609071000",
        **extra,
    }


def kafka(config: dict[str, Any] | None = None) -> KafkaSource:
    source: KafkaSource = make_source(KafkaSource, config)
    return source


def test_a_lag_record_over_the_threshold_is_consumer_lag() -> None:
    [event] = kafka().normalize(LAG, record(key="orders-fulfilment"))
    assert event.source == "kafka"
    assert event.type == "consumer-lag"
    assert (event.resource.kind, event.resource.name) == ("KafkaConsumerGroup", "orders-fulfilment")
    assert (
        event.message == "Consumer group orders-fulfilment is 15234 messages behind "
        "(threshold 1000)"
    )
    assert event.tags == {
        "kafka_topic": "ops.monitoring",
        "topic": "orders",
        "partition": "3",
        "cluster": "prod-eu",
    }
    assert event.timestamp.isoformat() == "2026-01-05T10:31:10+00:00"  # the record's own time
    assert event.occurrence == ""  # every lag report of one group is one condition
    assert event.raw_ref == "kafka:ops.monitoring/0@17"
    assert event.metadata["kafka"] == {
        "topic": "ops.monitoring",
        "partition": "0",
        "offset": "17",
        "key": "orders-fulfilment",
    }
    assert event.metadata["record"] == LAG
    assert event.metadata["lag"] == 15234


def test_lag_under_the_threshold_is_dropped_and_the_threshold_is_configurable() -> None:
    low = {**LAG, "lag": 999}
    with pytest.raises(Dropped, match="no-rule"):
        kafka().normalize(low, record())
    source = kafka({"rules": [{"preset": "consumer-lag", "lagThreshold": 500}]})
    [event] = source.normalize(low, record())
    assert "threshold 500" in event.message


def test_a_burrow_status_in_error_is_consumer_lag_with_its_severity() -> None:
    [event] = kafka().normalize(BURROW, record())
    assert event.type == "consumer-lag"
    assert event.resource.name == "payments-ledger"
    assert event.severity is Severity.ERROR
    assert event.reason == "BurrowERR"
    assert event.tags["topic"] == "payments"
    assert event.metadata["totalLag"] == 11342
    ok = json.loads(json.dumps(BURROW))
    ok["status"]["status"] = "OK"
    with pytest.raises(Dropped, match="no-rule"):
        kafka().normalize(ok, record())


@pytest.mark.parametrize(
    "health",
    [
        {"leader": -1},
        {"leader": 2, "offline": True},
        {"leader": 2, "state": "OFFLINE"},
        {"status": "OfflinePartition"},
    ],
)
def test_partition_health_records_without_a_leader_are_partition_offline(
    health: dict[str, Any],
) -> None:
    payload = {"topic": "payments", "partition": 4, "cluster": "prod-eu", **health}
    [event] = kafka().normalize(payload, record())
    assert event.type == "partition-offline"
    assert (event.resource.kind, event.resource.name) == ("KafkaPartition", "payments-4")
    assert event.message == "Kafka partition payments-4 is offline (no leader)"


def test_a_healthy_partition_is_dropped() -> None:
    with pytest.raises(Dropped, match="no-rule"):
        kafka().normalize({**OFFLINE, "leader": 2, "isr": [2, 3]}, record())


def test_rules_select_by_topic_and_map_fields() -> None:
    source = kafka(
        {
            "rules": [
                {
                    "topic": "app.errors",
                    "when": {"level": ["ERROR", "FATAL"]},
                    "eventType": "consumer-lag",  # a seed type with a mapping row
                    "fields": {
                        "resource.kind": "Service",
                        "resource.name": "{service}",
                        "message": "{msg}",
                        "severity": "{level}",
                        "id": "{@offset}",
                    },
                    "severityMap": {"FATAL": "critical"},
                },
                {"topic": "ops.*", "preset": "partition-offline"},
            ]
        }
    )
    payload = {"service": "checkout", "msg": "payment provider timeout", "level": "FATAL"}
    [event] = source.normalize(payload, record(topic="app.errors", offset=99))
    assert event.resource.name == "checkout"
    assert event.severity is Severity.CRITICAL
    assert event.occurrence == "99"
    with pytest.raises(Dropped, match="no-rule"):  # the lag preset is not configured here
        source.normalize(LAG, record(topic="ops.lag"))
    with pytest.raises(Dropped, match="no-rule"):  # other topics have no rule
        source.normalize(OFFLINE, record(topic="billing.health"))
    assert source.normalize(OFFLINE, record(topic="ops.health"))[0].type == "partition-offline"


def test_string_records_are_matched_as_value() -> None:
    source = kafka(
        {
            "rules": [
                {
                    "when": {"value": {"contains": "offline"}},
                    "eventType": "partition-offline",
                    "fields": {"resource.name": "{@key}", "message": "{value}"},
                }
            ]
        }
    )
    [event] = source.normalize("partition payments-4 went offline", record(key="payments-4"))
    assert event.resource.name == "payments-4"
    assert event.metadata["record"] == "partition payments-4 went offline"


def test_without_the_sink_metadata_the_record_is_refused_naming_the_setting() -> None:
    with pytest.raises(InvalidEventError) as caught:
        kafka().normalize(LAG, {"key": "x"})
    assert caught.value.field == "attributes.kafka.topic"
    assert "metadata.publish=true" in caught.value.message


def test_without_required_metadata_records_are_identified_by_content() -> None:
    source = kafka({"requireMetadata": False})
    first, again = (source.normalize(LAG, {})[0] for _ in range(2))
    assert first.id == again.id
    assert first.raw_ref == "kafka:?"


def test_the_same_record_position_has_the_same_id() -> None:
    assert kafka().normalize(LAG, record())[0].id == kafka().normalize(LAG, record())[0].id
    assert kafka().normalize(LAG, record())[0].id != kafka().normalize(LAG, record(offset=18))[0].id


@pytest.mark.parametrize("stamp", ["¹", "²³", "-٣"])
def test_a_timestamp_of_other_digits_is_ignored_not_a_crash(stamp: str) -> None:
    """``str.isdigit`` accepts superscripts that ``int`` refuses (found by hypothesis)."""
    (event,) = kafka().normalize(LAG, {**record(), "kafka.timestamp": stamp})
    assert event.raw_ref.startswith("kafka:ops.monitoring")


@pytest.mark.parametrize("value", ["", None, b""])
def test_empty_records_are_dropped(value: Any) -> None:
    with pytest.raises(Dropped, match="empty-record"):
        kafka().normalize(value, record())


def test_a_big_record_is_not_copied_into_the_metadata() -> None:
    big = {**LAG, "padding": "x" * 5000}
    [event] = kafka().normalize(big, record())
    assert "record" not in event.metadata
    assert event.metadata["record_truncated"] > 5000


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rules": [{"topic": "x"}]}, "needs eventType, fields.type or a preset"),
        ({"rules": [{"preset": "broker-down"}]}, "'consumer-lag' or 'partition-offline'"),
        ({"rules": [{"preset": "consumer-lag", "lagThreshold": -1}]}, "greater than or equal to 0"),
        ({"rules": [{"eventType": "a", "fields": {"msg": "{x}"}}]}, "unknown event field 'msg'"),
        ({"requiremetadata": False}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_fails_at_load(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaConfig.model_validate(config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=json_values | mutations(SAMPLES) | st.text(max_size=40) | st.binary(max_size=40),
    attrs=attributes | st.just(record()),
)
def test_any_input_gives_events_or_a_clean_error(raw: Any, attrs: dict[str, str]) -> None:
    check_normalizer(kafka().normalize, raw, attrs)
    check_normalizer(kafka({"requireMetadata": False}).normalize, raw, attrs)


# --- through the function (functions-framework's CloudEvent path) -----------------------------


@pytest.fixture
def deliver(
    function_env: Callable[..., Any], cloudevent_client: Callable[[str], Any]
) -> Callable[..., Any]:
    function_env()
    client = cloudevent_client("kafka")

    def post(data: bytes, attrs: dict[str, str] | None, message_id: str = "1") -> int:
        reply = client.post(
            "/projects/p1/topics/khook-kafka", json=push_body(data, attrs, message_id)
        )
        status: int = reply.status_code
        return status

    return post


def test_the_function_dispatches_a_bridged_record_once(deliver: Callable[..., Any]) -> None:
    data = json.dumps(LAG).encode()
    assert deliver(data, record(), "m1") == 200
    assert deliver(data, record(), "m1") == 200  # a redelivery
    assert deliver(data, record(offset=18), "m2") == 200  # the next report of the same lag
    requests = get_runtime().dispatcher.requests  # type: ignore[attr-defined]
    assert len(requests) == 1
    assert requests[0].event.type == "consumer-lag"
    assert requests[0].hook == "data/streaming"


def test_the_function_acknowledges_bad_records_and_tombstones(deliver: Callable[..., Any]) -> None:
    before = pubsub.STATS.invalid
    assert deliver(json.dumps(LAG).encode(), {"key": "x"}) == 200  # no metadata: logged, acked
    assert deliver(b"\xff\xfe", record()) == 200  # not UTF-8: logged, acked
    assert deliver(b"", record()) == 200  # tombstone: dropped
    assert pubsub.STATS.invalid == before + 2
    assert not get_runtime().dispatcher.requests  # type: ignore[attr-defined]
