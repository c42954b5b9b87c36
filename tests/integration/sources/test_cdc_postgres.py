"""wal2json output of a real PostgreSQL 15, from real INSERT/UPDATE/DELETE, into the cdc source
and through the cdc function.

The slot is read with ``pg_logical_slot_get_changes``, exactly what a relay publishing to
Pub/Sub would do; each returned ``data`` is one Pub/Sub message.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from khook_core.runtime import get_runtime
from khook_core.sources.base import Dropped
from khook_core.sources.cdc import CdcSource
from tests.support.postgres import PostgresServer
from tests.support.sources import make_source, push_body

# How a relay reads the slot: with positions, transaction ids and commit times.
CHANGES = (
    "select data from pg_logical_slot_get_changes(%s, NULL, NULL, 'format-version', %s, "
    "'include-xids', '1', 'include-timestamp', '1', 'include-lsn', '1')"
)
WORKLOAD = [
    "insert into {jobs} (id, status, note) values (42, 'running', 'nightly export')",
    "insert into {jobs} (id, status, note) values (43, 'failed', 'failed on arrival')",
    "update {jobs} set status = 'failed' where id = 42",
    "update {jobs} set note = 'retried by hand' where id = 42",  # status stays failed
    "delete from {jobs} where id = 43",
    "insert into {full} (id, status) values (1, 'running')",
    "update {full} set status = 'failed' where id = 1",
    "update {full} set status = 'failed' where id = 1",  # no transition: old == new
    "begin; update {jobs} set status = 'running' where id = 42; "
    "update {full} set status = 'error' where id = 1; commit",
    "truncate {jobs}",
]


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[dict[str, Any]]:
    """Two fresh tables (default and FULL replica identity) and a v1 and a v2 slot."""
    suffix = uuid.uuid4().hex[:8]
    slots = {1: f"khook_v1_{suffix}", 2: f"khook_v2_{suffix}"}
    names = {"jobs": f"jobs_{suffix}", "full": f"jobs_full_{suffix}"}
    with postgres.connect() as conn:
        conn.execute(f"create table {names['jobs']} (id int primary key, status text, note text)")
        conn.execute(f"create table {names['full']} (id int primary key, status text)")
        conn.execute(f"alter table {names['full']} replica identity full")
        for slot in slots.values():
            conn.execute("select pg_create_logical_replication_slot(%s, 'wal2json')", (slot,))
        try:
            yield {"conn": conn, "slots": slots, **names}
        finally:
            for slot in slots.values():
                conn.execute("select pg_drop_replication_slot(%s)", (slot,))
            conn.execute(f"drop table {names['jobs']}, {names['full']}")


def run_workload(db: dict[str, Any]) -> dict[int, list[str]]:
    """Execute the statements; return each slot's messages (one ``data`` per row)."""
    for statement in WORKLOAD:
        db["conn"].execute(statement.format(jobs=db["jobs"], full=db["full"]))
    out: dict[int, list[str]] = {}
    for version, slot in db["slots"].items():
        rows = db["conn"].execute(CHANGES, (slot, str(version))).fetchall()
        out[version] = [row[0] for row in rows]
    return out


def expected(db: dict[str, Any]) -> list[str]:
    jobs, full = f"public.{db['jobs']}", f"public.{db['full']}"
    return [
        f"{jobs}/43: status changed to 'failed' (insert)",
        f"{jobs}/42: status changed to 'failed' (update)",  # old value unknown: counts
        f"{jobs}/42: status changed to 'failed' (update)",  # ... so this one fires too
        f"{full}/1: status changed from 'running' to 'failed' (update)",
        f"{full}/1: status changed from 'failed' to 'error' (update)",
    ]


def normalize_all(messages: list[str]) -> list[Any]:
    source: CdcSource = make_source(CdcSource)
    events = []
    for data in messages:
        with contextlib.suppress(Dropped):  # anything else fails the test
            events.extend(source.normalize(data, {}))
    return events


@pytest.mark.parametrize("version", [1, 2])
def test_wal2json_changes_become_row_state_events(database: dict[str, Any], version: int) -> None:
    messages = run_workload(database)[version]
    events = normalize_all(messages)
    assert [e.message for e in events] == expected(database)
    assert all(e.type == "row-state-changed" for e in events)
    assert all(e.metadata["cdc"]["format"] == f"wal2json-v{version}" for e in events)
    assert len({e.occurrence for e in events}) == len(events)  # each change is its own firing
    full_update = events[3]
    assert full_update.metadata["before"] == {"id": 1, "status": "running"}
    assert full_update.timestamp.tzinfo is not None


def test_both_formats_agree(database: dict[str, Any]) -> None:
    out = run_workload(database)
    one, two = normalize_all(out[1]), normalize_all(out[2])
    assert [(e.resource.name, e.reason) for e in one] == [(e.resource.name, e.reason) for e in two]
    assert json.loads(out[1][0])["change"]  # v1 really is one document per transaction
    assert json.loads(out[2][0])["action"] == "B"  # v2 really is one document per row


def test_the_function_dispatches_wal2json_changes_once(
    database: dict[str, Any],
    function_env: Callable[..., Any],
    cloudevent_client: Callable[[str], Any],
) -> None:
    function_env()
    client = cloudevent_client("cdc")
    messages = run_workload(database)[2]
    for index, data in enumerate(messages * 2):  # every message delivered twice
        reply = client.post(
            "/projects/p1/topics/khook-cdc",
            json=push_body(data.encode(), None, f"m{index % len(messages)}"),
        )
        assert reply.status_code == 200
    requests = get_runtime().dispatcher.requests  # type: ignore[attr-defined]
    assert [r.event.message for r in requests] == expected(database)
