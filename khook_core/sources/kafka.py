"""The ``kafka`` source: Kafka records bridged to Pub/Sub by the Kafka Connect Pub/Sub sink.

The sink (``CloudPubSubSinkConnector``) publishes the record value as the message data and, with
``metadata.publish=true``, the record's position as attributes (``kafka.topic``,
``kafka.partition``, ``kafka.offset``, ``kafka.timestamp``; the key as ``key``). Rules in
``plugins.yaml`` pick records by topic and content and map their fields to an Event with the
shared field-mapping language (``fieldmap``). Two presets give the seed event types:

- ``consumer-lag``: lag records (``{"group", "topic", "lag"}``) at or over ``lagThreshold``, and
  Burrow consumer-status documents in ``WARN``/``ERR``/``STOP``/``STALL``;
- ``partition-offline``: partition health records with ``leader: -1``, ``offline: true`` or an
  offline ``state``.

Lag and health monitors repeat themselves every few seconds, so an event's occurrence is empty by
default: one firing per resource per dedup window, however many records say the same thing.
"""

from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from khook_core.errors import InvalidEventError
from khook_core.event import Event
from khook_core.sources.base import Dropped, SourceContext
from khook_core.sources.fieldmap import (
    FieldRule,
    content_digest,
    decode_value,
    glob_match,
    text_of,
    time_of,
    to_event,
    validate_generic,
)

CONSUMER_LAG: Final = "consumer-lag"
PARTITION_OFFLINE: Final = "partition-offline"
DEFAULT_LAG_THRESHOLD: Final = 1000
"""Messages behind before lag is worth an agent's time; tune per topic with ``lagThreshold``."""
MAX_RECORD_METADATA_CHARS: Final = 4096
"""A record up to this size travels in ``metadata.record`` (the prompt caps it again)."""
REQUIRED_ATTRIBUTES: Final = ("kafka.topic", "kafka.partition", "kafka.offset")

_GROUP = "group|groupId|group_id|consumerGroup|consumer_group"
_LAG = "lag|totalLag|total_lag|totallag|consumerLag|consumer_lag"
_BURROW_SEVERITY = {"WARN": "warning", "ERR": "error", "STOP": "error", "STALL": "error"}


def _preset_rules(preset: str, threshold: float) -> list[dict[str, Any]]:
    """The concrete rules a preset stands for (user keys are merged over each)."""
    if preset == CONSUMER_LAG:
        return [
            {  # Burrow's consumer status (its HTTP notifier or /v3/.../status, relayed to Kafka)
                "when": {"status.status": list(_BURROW_SEVERITY), "status.group": {"exists": True}},
                "eventType": CONSUMER_LAG,
                "severityMap": _BURROW_SEVERITY,
                "fields": {
                    "severity": "{status.status}",
                    "reason": "Burrow{status.status}",
                    "resource.kind": "KafkaConsumerGroup",
                    "resource.name": "{status.group}",
                    "message": "Consumer group {status.group} on cluster {status.cluster} is "
                    "{status.status}: total lag {status.totallag}",
                    "tags.cluster": "{status.cluster}",
                    "tags.topic": "{status.maxlag.topic}",
                    "metadata.totalLag": "{status.totallag}",
                    "metadata.maxLag": "{status.maxlag}",
                },
            },
            {  # a flat lag record, e.g. from a lag exporter or a cron job
                "when": {_LAG: {"gte": threshold}, _GROUP: {"exists": True}},
                "eventType": CONSUMER_LAG,
                "fields": {
                    "reason": "ConsumerLag",
                    "severity": "{severity}",
                    "resource.kind": "KafkaConsumerGroup",
                    "resource.name": f"{{{_GROUP}}}",
                    "message": f"Consumer group {{{_GROUP}}} is {{{_LAG}}} messages behind "
                    f"(threshold {threshold:g})",
                    "tags.topic": "{topic}",
                    "tags.partition": "{partition}",
                    "tags.cluster": "{cluster}",
                    "timestamp": "{timestamp|ts}",
                    "metadata.lag": f"{{{_LAG}}}",
                    "metadata.threshold": "{threshold}",
                },
            },
        ]
    common = {
        "eventType": PARTITION_OFFLINE,
        "fields": {
            "reason": "PartitionOffline",
            "severity": "{severity}",
            "resource.kind": "KafkaPartition",
            "resource.name": "{topic}-{partition}",
            "message": "Kafka partition {topic}-{partition} is offline (no leader)",
            "tags.topic": "{topic}",
            "tags.partition": "{partition}",
            "tags.cluster": "{cluster}",
            "timestamp": "{timestamp|ts}",
            "metadata.replicas": "{replicas}",
            "metadata.isr": "{isr}",
        },
    }
    located = {"topic": {"exists": True}, "partition": {"exists": True}}
    return [
        {**common, "when": {**located, "leader": -1}},
        {**common, "when": {**located, "offline": True}},
        {
            **common,
            "when": {
                **located,
                "state|status": [
                    "offline",
                    "offlinepartition",
                    "no_leader",
                    "noleader",
                    "unavailable",
                ],
            },
        },
    ]


class KafkaRule(FieldRule):
    """A ``FieldRule`` for the records of the topics matching ``topic`` (a glob)."""

    topic: str = "*"
    preset: Literal["consumer-lag", "partition-offline"] | None = None
    """Prefill ``when``/``eventType``/``fields``; keys given here are merged over the preset."""
    lag_threshold: float = Field(default=DEFAULT_LAG_THRESHOLD, ge=0, alias="lagThreshold")
    """``consumer-lag`` preset: the lag at which a flat lag record becomes an event."""

    @model_validator(mode="after")
    def _needs_type(self) -> "KafkaRule":
        if self.preset is None and not self.event_type and "type" not in self.fields:
            raise ValueError("a rule needs eventType, fields.type or a preset")
        return self


def expand(rule: KafkaRule) -> list[KafkaRule]:
    """A preset rule as the concrete rules it stands for."""
    if rule.preset is None:
        return [rule]
    given = rule.model_dump(by_alias=True, exclude_unset=True, exclude={"preset", "lag_threshold"})
    expanded = []
    for base in _preset_rules(rule.preset, rule.lag_threshold):
        merged = {**base, **given, "fields": {**base.get("fields", {}), **given.get("fields", {})}}
        expanded.append(KafkaRule.model_validate(merged))
    return expanded


class KafkaConfig(BaseModel):
    """Settings of the kafka source (``plugins.yaml`` → ``config:``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    require_metadata: bool = Field(default=True, alias="requireMetadata")
    """Refuse records without ``kafka.topic/partition/offset`` (the sink's ``metadata.publish``):
    without them rules cannot select by topic and a record has no identity."""
    rules: list[KafkaRule] = Field(
        default_factory=lambda: [
            KafkaRule(preset=CONSUMER_LAG),
            KafkaRule(preset=PARTITION_OFFLINE),
        ]
    )
    """Tried in order; the first whose topic and ``when`` match builds the event."""


class KafkaSource:
    """Normalises one bridged Kafka record into at most one Event."""

    name: ClassVar[str] = "kafka"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = (CONSUMER_LAG, PARTITION_OFFLINE)
    config_model: ClassVar[type[BaseModel] | None] = KafkaConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        cfg = config if isinstance(config, KafkaConfig) else KafkaConfig()
        self.require_metadata = cfg.require_metadata
        self.rules = [concrete for rule in cfg.rules for concrete in expand(rule)]
        self.context = context

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        missing = [a for a in REQUIRED_ATTRIBUTES if not attributes.get(a)]
        if missing and self.require_metadata:
            raise InvalidEventError(
                f"Pub/Sub attribute {missing[0]} is missing: set metadata.publish=true on the "
                "Kafka Connect CloudPubSubSinkConnector (or requireMetadata: false)",
                field=f"attributes.{missing[0]}",
            )
        topic = attributes.get("kafka.topic", "")
        value = decode_value(raw)
        if value is None or value == "":
            raise Dropped("empty-record")
        meta: dict[str, Any] = {
            "topic": topic,
            "partition": attributes.get("kafka.partition", ""),
            "offset": attributes.get("kafka.offset", ""),
            "key": attributes.get("key", ""),
            "timestamp": attributes.get("kafka.timestamp", ""),
            "attributes": dict(attributes),
        }
        doc = value if isinstance(value, dict) else {"value": value}
        rule = next(
            (
                r
                for r in self.rules
                if (r.topic == "*" or glob_match(r.topic, topic)) and r.matches(doc, meta)
            ),
            None,
        )
        if rule is None:
            raise Dropped("no-rule")
        generic = validate_generic(rule.render(doc, meta))
        record_time = time_of(
            _int_or_none(attributes.get("kafka.timestamp", "")), "attributes.kafka.timestamp"
        )
        if missing:
            identity: tuple[object, ...] = ("digest", content_digest(value), meta["key"])
            raw_ref = f"kafka:{topic or '?'}"
        else:
            identity = (topic, meta["partition"], meta["offset"])
            raw_ref = f"kafka:{topic}/{meta['partition']}@{meta['offset']}"
        kafka_meta = {k: meta[k] for k in ("topic", "partition", "offset", "key") if meta[k]}
        metadata: dict[str, Any] = {"kafka": kafka_meta}
        encoded = text_of(value)
        if len(encoded) <= MAX_RECORD_METADATA_CHARS:
            metadata["record"] = value
        else:
            metadata["record_truncated"] = len(encoded)
        tags = {"kafka_topic": topic} if topic else {}
        if generic.timestamp is None and record_time is not None:
            generic = generic.model_copy(update={"timestamp": record_time})
        return [
            to_event(
                generic,
                source=self.name,
                id_parts=identity,
                now=self.context.clock(),
                raw_ref=raw_ref,
                metadata=metadata,
                tags=tags,
            )
        ]


def _int_or_none(value: str) -> int | None:
    text = value.strip()
    digits = text.isascii() and text.lstrip("-").isdigit()
    return int(text) if 0 < len(text) <= 20 and digits else None
