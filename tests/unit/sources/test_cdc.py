"""The cdc source: Debezium envelopes, ops, tombstones, wal2json v1/v2, rules; the function."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from khook_core.errors import InvalidEventError
from khook_core.runtime import get_runtime
from khook_core.sources.base import Dropped
from khook_core.sources.cdc import CdcConfig, CdcSource
from tests.support.sources import SAMPLES as SAMPLE_DIR
from tests.support.sources import make_source, push_body, sample
from tests.support.strategies import attributes, check_normalizer, json_values, mutations

WRAPPED = sample("cdc", "debezium-update-with-schema.json")
PAYLOAD = WRAPPED["payload"]
MYSQL = sample("cdc", "debezium-update-no-schema.json")
SNAPSHOT = sample("cdc", "debezium-snapshot-read.json")
V1 = sample("cdc", "wal2json-v1.json")
V2_LINES = (SAMPLE_DIR / "cdc" / "wal2json-v2.jsonl").read_text()
V2 = [json.loads(line) for line in V2_LINES.splitlines()]
SAMPLES = [WRAPPED, PAYLOAD, MYSQL, SNAPSHOT, V1, *V2]


def cdc(config: dict[str, Any] | None = None) -> CdcSource:
    source: CdcSource = make_source(CdcSource, config)
    return source


def change(op: str, before: Any = None, after: Any = None, **source: Any) -> dict[str, Any]:
    return {
        "op": op,
        "before": before,
        "after": after,
        "ts_ms": 1767609071450,
        "source": {
            "name": "shopdb",
            "db": "shop",
            "schema": "public",
            "table": "jobs",
            "lsn": 90212336,
            "ts_ms": 1767609071000,
            "snapshot": "false",
            **source,
        },
    }


def test_a_debezium_update_to_failed_is_row_state_changed() -> None:
    [event] = cdc().normalize(WRAPPED, {})
    assert event.source == "cdc"
    assert event.type == "row-state-changed"
    assert (event.resource.kind, event.resource.name) == ("Row", "public.jobs/42")
    assert event.message == "public.jobs/42: status changed from 'RUNNING' to 'FAILED' (update)"
    assert event.reason == "status=FAILED"
    assert event.occurrence == "shopdb:lsn=90212336:u"
    assert event.timestamp.isoformat() == "2026-01-05T10:31:11+00:00"
    assert event.tags == {
        "db": "shop",
        "schema": "public",
        "table": "jobs",
        "operation": "update",
        "column": "status",
    }
    assert event.metadata["after"]["error"] == "payment provider timeout after 3 retries"
    assert event.metadata["cdc"]["format"] == "debezium"
    assert event.group_key == "public.jobs"


def test_with_and_without_the_schema_wrapper_give_the_same_event() -> None:
    assert cdc().normalize(WRAPPED, {}) == cdc().normalize(PAYLOAD, {})


def test_a_mysql_change_is_identified_by_its_binlog_position() -> None:
    [event] = cdc().normalize(MYSQL, {})
    assert event.resource.name == "orders.export_jobs/77"
    assert event.occurrence == "ordersdb:file=mysql-bin.000003:4821:0:u"


def test_an_insert_that_is_already_failed_fires_and_an_unrelated_update_does_not() -> None:
    [event] = cdc().normalize(change("c", None, {"id": 1, "status": "failed"}), {})
    assert event.message == "public.jobs/1: status changed to 'failed' (insert)"
    with pytest.raises(Dropped, match="no-rule"):
        cdc().normalize(
            change(
                "u", {"id": 1, "status": "failed", "n": 1}, {"id": 1, "status": "failed", "n": 2}
            ),
            {},
        )
    with pytest.raises(Dropped, match="no-rule"):
        cdc().normalize(
            change("u", {"id": 1, "status": "running"}, {"id": 1, "status": "done"}), {}
        )


def test_without_the_old_row_an_update_counts_as_a_transition() -> None:
    """PostgreSQL without REPLICA IDENTITY FULL sends no ``before`` for updates."""
    [event] = cdc().normalize(change("u", None, {"id": 1, "status": "failed"}), {})
    assert event.message == "public.jobs/1: status changed to 'failed' (update)"


def test_snapshot_reads_are_skipped_unless_asked_for() -> None:
    with pytest.raises(Dropped, match="snapshot"):
        cdc().normalize(SNAPSHOT, {})
    source = cdc(
        {
            "includeSnapshots": True,
            "rules": [{"column": "status", "to": ["failed"], "operations": ["read", "insert"]}],
        }
    )
    [event] = source.normalize(SNAPSHOT, {})
    assert event.tags["operation"] == "read"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "tombstone"),
        ("", "tombstone"),
        (b"", "tombstone"),
        ({"schema": {"type": "struct"}, "payload": None}, "tombstone"),
        (
            {"op": "m", "source": {}, "message": {"prefix": "x", "content": "eA=="}},
            "logical-message",
        ),
        ({"status": "BEGIN", "id": "571:53195829", "event_count": None}, "transaction-boundary"),
        ({"ts_ms": 1767609071000}, "heartbeat"),
        (
            {
                "source": {},
                "databaseName": "orders",
                "ddl": "ALTER TABLE t ADD c INT",
                "tableChanges": [],
            },
            "schema-change",
        ),
        ([], "empty-batch"),
    ],
)
def test_non_changes_are_dropped_with_their_reason(payload: Any, reason: str) -> None:
    with pytest.raises(Dropped) as caught:
        cdc().normalize(payload, {})
    assert caught.value.reason == reason


def test_delete_and_truncate_rules() -> None:
    source = cdc(
        {
            "rules": [
                {"table": "public.jobs", "operations": ["delete"], "eventType": "row-changed"},
                {
                    "table": "jobs",
                    "operations": ["truncate"],
                    "eventType": "row-changed",
                    "severity": "critical",
                },
            ]
        }
    )
    [deleted] = source.normalize(change("d", {"id": 5}, None), {})
    assert deleted.message == "delete of public.jobs/5"
    [truncated] = source.normalize(change("t"), {})
    assert (truncated.resource.kind, truncated.resource.name) == ("Table", "public.jobs")
    assert truncated.severity.value == "critical"
    with pytest.raises(Dropped, match="no-rule"):
        source.normalize(change("c", None, {"id": 1}), {})


def test_rules_select_by_table_glob_transition_and_when() -> None:
    source = cdc(
        {
            "rules": [
                {
                    "table": "shop.public.pay*",
                    "column": "state",
                    "from": ["pending", "authorised"],
                    "to": ["declined"],
                    "when": {"after.amount": {"gte": 100}},
                    "keyColumns": ["id", "psp"],
                    "fields": {
                        "message": "Payment {after.id} declined at {after.psp}",
                        "tags.psp": "{after.psp}",
                        "severity": "error",
                    },
                }
            ]
        }
    )
    good = change(
        "u",
        {"id": 9, "psp": "adyen", "state": "authorised", "amount": 250},
        {"id": 9, "psp": "adyen", "state": "DECLINED", "amount": 250},
        table="payments",
    )
    [event] = source.normalize(good, {})
    assert event.resource.name == "public.payments/9,adyen"
    assert event.message == "Payment 9 declined at adyen"
    assert event.tags["psp"] == "adyen"
    for bad in (
        {**good, "source": {**good["source"], "table": "jobs"}},
        {**good, "before": {**good["before"], "state": "captured"}},
        {**good, "before": None},  # `from` needs the old value
        {**good, "after": {**good["after"], "amount": 5}},
    ):
        with pytest.raises(Dropped, match="no-rule"):
            source.normalize(bad, {})


def test_wal2json_v1_transactions_give_one_event_per_matching_change() -> None:
    [event] = cdc().normalize(V1, {})
    assert event.resource.name == "public.jobs/42"
    assert event.occurrence == "wal2json:0/1509A08#0:u"
    assert event.metadata["cdc"]["format"] == "wal2json-v1"
    assert event.timestamp.isoformat() == "2026-01-05T10:31:11.046065+00:00"
    two = copy.deepcopy(V1)
    two["change"].append({**V1["change"][0], "columnvalues": [43, "failed", None]})
    assert [e.resource.name for e in cdc().normalize(two, {})] == [
        "public.jobs/42",
        "public.jobs/43",
    ]
    with pytest.raises(Dropped, match="empty-transaction"):
        cdc().normalize({**V1, "change": []}, {})


def test_wal2json_v2_lines_as_one_message_or_one_each() -> None:
    [event] = cdc().normalize(V2_LINES, {})
    assert event.message == "public.jobs_full/1: status changed from 'running' to 'failed' (update)"
    assert event.occurrence == "wal2json:0/1509B90:u"
    with pytest.raises(Dropped, match="transaction-boundary"):
        cdc().normalize(V2[0], {})
    assert cdc().normalize(V2[1], {}) == [event]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"op": "x"}, "op"),
        ({"op": "u", "after": [1]}, "after"),
        ({"op": "u", "source": "pg"}, "source"),
        ({"op": "u", "source": {"table": {"a": 1}}}, "source.table"),
        ({"op": "u", "source": {"ts_ms": "yesterday"}}, "source.ts_ms"),
        ({"change": "x"}, "change"),
        ({"change": [{"kind": "upsert"}]}, "change[0].kind"),
        (
            {"change": [{"kind": "insert", "columnnames": ["a"], "columnvalues": [1, 2]}]},
            "change[0].columnvalues",
        ),
        ({"change": [{"kind": "delete", "oldkeys": [1]}]}, "change[0].oldkeys"),
        ({"action": "X"}, "action"),
        ({"action": "I", "columns": [{"value": 1}]}, "columns[0].name"),
        ({"hello": "world"}, "op"),
        (42, "(body)"),
    ],
)
def test_malformed_changes_are_422_naming_the_field(payload: Any, field: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        cdc().normalize(payload, {})
    assert (caught.value.status, caught.value.field) == (422, field)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rules": [{"to": ["failed"]}]}, "from/to need a column"),
        ({"rules": [{"operations": ["upsert"]}]}, "Input should be 'c', 'u', 'd', 'r' or 't'"),
        ({"rules": [{"column": "status", "fields": {"type": "{x"}}]}, "unbalanced braces"),
    ],
)
def test_bad_config_fails_at_load(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CdcConfig.model_validate(config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=json_values
    | mutations(SAMPLES)
    | st.lists(mutations(SAMPLES), max_size=3)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    attrs=attributes,
)
def test_any_input_gives_events_or_a_clean_error(raw: Any, attrs: dict[str, str]) -> None:
    check_normalizer(cdc().normalize, raw, attrs)
    check_normalizer(
        cdc(
            {
                "includeSnapshots": True,
                "rules": [{"operations": ["c", "u", "d", "r", "t"], "eventType": "row-changed"}],
            }
        ).normalize,
        raw,
        attrs,
    )


# --- through the function (functions-framework's CloudEvent path) -----------------------------


@pytest.fixture
def deliver(
    function_env: Callable[..., Any], cloudevent_client: Callable[[str], Any]
) -> Callable[..., int]:
    function_env()
    client = cloudevent_client("cdc")

    def post(data: bytes, message_id: str = "1") -> int:
        reply = client.post("/projects/p1/topics/khook-cdc", json=push_body(data, None, message_id))
        status: int = reply.status_code
        return status

    return post


def test_the_function_fires_each_change_once(deliver: Callable[..., int]) -> None:
    wrapped = json.dumps(WRAPPED).encode()
    assert deliver(wrapped, "a") == 200
    assert deliver(wrapped, "a") == 200  # redelivery of the same change
    assert deliver(json.dumps(PAYLOAD).encode(), "b") == 200  # the same change, unwrapped
    later = copy.deepcopy(PAYLOAD)  # the next failure of the same row
    later["source"]["lsn"] = 90999999
    assert deliver(json.dumps(later).encode(), "c") == 200
    assert deliver(b"", "d") == 200  # the tombstone after a delete
    assert deliver(V2_LINES.encode(), "e") == 200
    requests = get_runtime().dispatcher.requests  # type: ignore[attr-defined]
    assert [r.event.occurrence for r in requests] == [
        "shopdb:lsn=90212336:u",
        "shopdb:lsn=90999999:u",
        "wal2json:0/1509B90:u",
    ]
    assert {r.hook for r in requests} == {"data/jobs"}
