"""The audit record's one field list: every stored and shown form follows ``Firing``."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

from khook_core import audit
from khook_core.state import audit_fields
from khook_core.state.base import DedupKey, Firing

AT = datetime(2026, 1, 5, 10, 35, 7, tzinfo=UTC)
FIRING = Firing(
    key=DedupKey("shop/web|kubernetes|pod-restart|shop/Pod/web-0|"),
    hook="shop/web",
    event_id="e1",
    event_type="pod-restart",
    source="kubernetes",
    resource="shop/Pod/web-0",
    agent="kagent/k8s-agent",
    prompt_hash="abc123",
    outcome="failed:transient",
    at=AT,
    task_id="t-1",
    error="agent down",
    extra={"recovered": "found"},
)


def test_the_field_list_is_the_dataclass():
    names = tuple(f.name for f in dataclasses.fields(Firing))
    assert names == audit_fields.FIELDS
    assert set(audit_fields.TEXT_FIELDS) == set(names) - {"at", "extra"}
    assert sorted(audit_fields.COLUMNS) == sorted(names)


def test_a_document_and_a_row_give_back_the_record():
    assert audit_fields.from_document(audit_fields.to_document(FIRING)) == FIRING
    assert audit_fields.from_row(audit_fields.to_row(FIRING)) == FIRING
    assert audit_fields.to_document(FIRING)["at"] is AT  # a timestamp for Firestore's TTL


def test_a_document_from_before_a_field_existed_reads_it_as_empty():
    doc = audit_fields.to_document(FIRING)
    del doc["error"], doc["task_id"], doc["extra"]
    older = audit_fields.from_document(doc)
    assert (older.error, older.task_id, older.extra) == ("", "", {})


def test_the_cli_json_has_every_field_in_the_record_order_and_the_time_with_its_offset():
    shown = audit.to_json(
        dataclasses.replace(FIRING, at=AT.astimezone(timezone(timedelta(hours=2))))
    )
    assert list(shown) == list(audit_fields.FIELDS)
    assert shown["at"] == "2026-01-05T12:35:07+02:00"
    assert json.loads(json.dumps(shown))["extra"] == {"recovered": "found"}
    assert audit.to_json(FIRING)["at"] == "2026-01-05T10:35:07+00:00"


def test_a_firing_becomes_one_readable_line():
    assert audit.format_line(FIRING) == (
        "2026-01-05T10:35:07Z  failed:transient   shop/web  pod-restart shop/Pod/web-0  "
        "-> kagent/k8s-agent  task=t-1  error=agent down"
    )
