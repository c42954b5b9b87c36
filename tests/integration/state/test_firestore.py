"""What is particular to FirestoreStateStore, against the Firestore emulator: its documents,
retried writes, process races, database selection, errors and redelivery through the pipeline.
The contracts every backend keeps are the suites in tests/integration/state/."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from khook_core.dispatch.routing import RoutingDispatcher
from khook_core.errors import TransientError
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import DispatchSettings, Settings
from khook_core.state import open_store
from khook_core.state.base import DedupKey
from khook_core.state.firestore import AUDIT_RETENTION, FIRINGS, FirestoreStateStore
from khook_local.ports import free_port
from tests.support.a2a_agent import AGENT_NAME, AGENT_NAMESPACE, TestAgent
from tests.support.audit import KEY as KEY
from tests.support.audit import NOW, firing
from tests.support.configdir import make_config, restart_hook
from tests.support.firestore import FirestoreEmulator, race
from tests.support.k8s_events import core_event

TTL = timedelta(minutes=10)
HOOK = restart_hook(
    agent=AGENT_NAME,
    agent_namespace=AGENT_NAMESPACE,
    name="web-restarts",
    prompt="Pod {{.ResourceName}} restarted. Find the cause.",
)


@pytest.mark.integration
class TestClaims:
    def test_a_claim_document_carries_its_key_and_expiry(
        self, firestore_store: FirestoreStateStore
    ):
        assert firestore_store.claim(key=KEY, ttl=TTL, now=NOW)
        assert firestore_store.claim(key=KEY, ttl=TTL, now=NOW + timedelta(minutes=10))
        doc = firestore_store.claim_state(KEY)
        assert doc is not None
        assert doc["key"] == KEY
        assert doc["expire_at"] == NOW + timedelta(minutes=20)  # a Timestamp, for the TTL policy

    def test_release_deletes_the_claim_document(self, firestore_store: FirestoreStateStore):
        assert firestore_store.claim(key=KEY, ttl=TTL, now=NOW)
        firestore_store.release(key=KEY)
        assert firestore_store.claim_state(KEY) is None

    def test_confirm_records_outcome_and_task_and_keeps_the_expiry(
        self, firestore_store: FirestoreStateStore
    ):
        firestore_store.claim(key=KEY, ttl=TTL, now=NOW)
        firestore_store.confirm(key=KEY, outcome="dispatched", task_id="t-13bb")
        doc = firestore_store.claim_state(KEY)
        assert doc is not None
        assert (doc["outcome"], doc["task_id"]) == ("dispatched", "t-13bb")
        assert doc["expire_at"] == NOW + TTL

    def test_confirming_a_vanished_claim_is_harmless(self, firestore_store: FirestoreStateStore):
        firestore_store.confirm(key=DedupKey("never/claimed"), outcome="dispatched")
        assert firestore_store.claim_state(DedupKey("never/claimed")) is None

    def test_keys_with_slashes_map_to_valid_document_ids(self):
        doc_id = FirestoreStateStore.doc_id(DedupKey("a/b|c/d/e"))
        assert "/" not in doc_id
        assert len(doc_id) == 64

    def test_a_retried_write_that_landed_is_recognised_as_ours(
        self, firestore_store: FirestoreStateStore, monkeypatch: pytest.MonkeyPatch
    ):
        import uuid

        fixed = uuid.UUID(int=7)
        monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
        firestore_store.claim(key=KEY, ttl=TTL, now=NOW)  # "the first attempt that landed"
        assert firestore_store.claim(key=KEY, ttl=TTL, now=NOW)  # the retry reads its own token

    def test_eight_processes_racing_over_1000_keys_give_one_winner_a_key(
        self, firestore_store: FirestoreStateStore
    ):
        keys = [f"race/hook|kubernetes|pod-restart|ns/Pod/p-{i}|" for i in range(1000)]
        reports = race(keys, processes=8, now_iso=NOW.isoformat())
        wins = Counter(key for _, won, _ in reports for key in won)
        assert len(reports) == 8
        assert set(wins) == set(keys)
        assert max(wins.values()) == 1


@pytest.mark.integration
def test_records_carry_an_expiry_for_the_optional_retention_policy(
    firestore_store: FirestoreStateStore,
) -> None:
    from google.cloud import firestore

    firestore_store.record(firing("e0", outcome="failed:transient", error="agent down"))
    client = firestore.Client(project=firestore_store.project)
    try:
        [doc] = [snap.to_dict() or {} for snap in client.collection(FIRINGS).stream()]
    finally:
        client.close()  # type: ignore[no-untyped-call]
    assert doc["expire_at"] == NOW + AUDIT_RETENTION
    assert doc["at"] == NOW


@pytest.mark.integration
def test_open_store_selects_firestore_and_a_named_database(
    firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    store = open_store("firestore:khook-test", project=Settings.from_env().firestore.project_id())
    try:
        assert isinstance(store, FirestoreStateStore)
        assert (store.project, store.database) == ("demo-khook", "khook-test")
        key = DedupKey(f"named-db/{time.time_ns()}")
        assert store.claim(key=key, ttl=TTL, now=NOW)
        assert not store.claim(key=key, ttl=TTL, now=NOW)
    finally:
        store.close()


def test_an_unreachable_firestore_is_a_transient_error_with_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    store = FirestoreStateStore(firestore.Client(project="demo-khook"), timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(TransientError, match=r"Firestore claim .*project demo-khook") as info:
            store.claim(key=KEY, ttl=TTL, now=NOW)
    finally:
        store.close()
    assert info.value.__cause__ is not None
    assert time.monotonic() - started < 5


@pytest.mark.integration
def test_a_redelivered_event_starts_one_agent_run(
    firestore_store: FirestoreStateStore, a2a_agent: TestAgent, tmp_path: Path
) -> None:
    runtime = Runtime.build(
        Settings(config_dir=make_config(tmp_path, HOOK), state="memory", dispatch="auto"),
        clock=Clock(NOW),
        store=firestore_store,
        dispatcher=RoutingDispatcher(DispatchSettings(kagent_api_url=a2a_agent.base_url)),
    )
    raw = core_event(count=5)
    try:
        [first] = run_pipeline("kubernetes", raw, {}, runtime=runtime)
        [second] = run_pipeline("kubernetes", raw, {}, runtime=runtime)
    finally:
        runtime.dispatcher.close()
    assert first.decision == "dispatched"
    assert second.decision == "duplicate"
    [run] = a2a_agent.runs
    assert run.message_id.startswith("khook-")
    claim = firestore_store.claim_state(DedupKey(first.key or ""))
    assert claim is not None
    assert (claim["outcome"], claim["task_id"]) == ("dispatched", first.task_id)
    [record] = firestore_store.firings(hook="shop/web-restarts")
    assert (record.outcome, record.task_id) == ("dispatched", first.task_id)


@pytest.mark.integration
def test_a_failed_dispatch_releases_the_firestore_claim(
    firestore_store: FirestoreStateStore, tmp_path: Path
) -> None:
    runtime = Runtime.build(
        Settings(config_dir=make_config(tmp_path, HOOK), state="memory", dispatch="auto"),
        clock=Clock(NOW),
        store=firestore_store,
        dispatcher=RoutingDispatcher(
            DispatchSettings(kagent_api_url=f"http://127.0.0.1:{free_port()}", dispatch_retries=0)
        ),
    )
    try:
        [decision] = run_pipeline("kubernetes", core_event(count=6), {}, runtime=runtime)
    finally:
        runtime.dispatcher.close()
    assert decision.decision == "failed:transient"
    assert decision.retryable
    assert firestore_store.claim_state(DedupKey(decision.key or "")) is None
    [record] = firestore_store.firings()
    assert record.outcome == "failed:transient"
