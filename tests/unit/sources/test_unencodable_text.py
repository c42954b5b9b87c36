"""Arbitrary Unicode, lone surrogates included, anywhere in any source's payload and in the stores.

A JSON ``\\ud800`` escape decodes to a string Python holds but cannot encode as UTF-8. The
transports refuse such text at the parse (``jsontext.loads``, naming the field); behind them,
every normaliser, ``stable_id`` and the state stores must still never fail on it, since a
plugin or a direct caller may hand them such strings.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khook_core import jsontext
from khook_core.event import stable_id
from khook_core.sources.alertmanager import AlertmanagerSource
from khook_core.sources.cdc import CdcSource
from khook_core.sources.kafka import KafkaSource
from khook_core.sources.kubernetes import KubernetesSource
from khook_core.sources.webhook import WebhookSource
from khook_core.state.base import DedupKey, Firing
from khook_core.state.memory import MemoryStateStore
from khook_core.state.sqlite import SqliteStateStore
from khook_core.storm.records import Backlog, BacklogKey, BacklogKind, Summary
from tests.support.sources import SAMPLES, make_source, sample
from tests.support.strategies import check_normalizer

LONE = ["\ud800", "\udfff", "a\udc80b", "\udbff\udc00", "\ud83d"]
"""Lone surrogates (a high and a low one written apart are still two lone ones)."""

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=16)
"""Every code point, surrogates included."""
surrogate_text = st.builds(lambda a, s, b: a + s + b, any_text, st.sampled_from(LONE), any_text)
hostile_text = st.one_of(surrogate_text, any_text)

KUBERNETES_EVENTS = [
    json.loads(line)
    for line in (SAMPLES / "kubernetes" / "events.jsonl").read_text().splitlines()
    if line.strip()
]
KAFKA_ATTRIBUTES = {
    "kafka.topic": "ops.lag",
    "kafka.partition": "0",
    "kafka.offset": "7",
    "kafka.timestamp": "1767609071000",
    "key": "orders",
}


def _documents(source: str) -> list[Any]:
    return [sample(source, p.name) for p in sorted((SAMPLES / source).glob("*.json"))]


SOURCES: dict[str, tuple[Callable[[], Any], list[Any], dict[str, str]]] = {
    "kubernetes": (
        lambda: make_source(KubernetesSource, {"freshnessMinutes": 10**9}),
        KUBERNETES_EVENTS,
        {},
    ),
    "alertmanager": (lambda: make_source(AlertmanagerSource), _documents("alertmanager"), {}),
    "webhook": (lambda: make_source(WebhookSource), _documents("webhook"), {"http.path": "/"}),
    "kafka": (lambda: make_source(KafkaSource), _documents("kafka"), KAFKA_ATTRIBUTES),
    "cdc": (lambda: make_source(CdcSource), _documents("cdc"), {}),
}


def _string_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every string value, and of every key (marked by a trailing ``None``)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key, None))
            found.extend(_string_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_string_paths(value, (*prefix, index)))
    elif isinstance(node, str):
        found.append(prefix)
    return found


@st.composite
def with_hostile_text(draw: st.DrawFn, documents: list[Any]) -> Any:
    """A sample payload with one string value or key replaced by arbitrary text."""
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    path = draw(st.sampled_from(_string_paths(doc)))
    text = draw(hostile_text)
    if path and path[-1] is None:  # rename a key
        parent = doc
        for part in path[:-2]:
            parent = parent[part]
        parent[text] = parent.pop(path[-2])
        return doc
    if not path:
        return text
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = text
    return doc


@pytest.mark.parametrize("source", sorted(SOURCES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_normalizer_takes_any_text_and_ids_never_fail(source: str, data: Any) -> None:
    build, documents, attributes = SOURCES[source]
    raw = data.draw(with_hostile_text(documents))
    attrs = {**attributes, data.draw(st.sampled_from(["x-note", "key"])): data.draw(hostile_text)}
    plugin = build()
    check_normalizer(plugin.normalize, raw, attrs)
    try:
        first = plugin.normalize(raw, attrs)
    except Exception:  # refused or dropped: check_normalizer held it to the contract
        return
    assert [e.id for e in first] == [e.id for e in plugin.normalize(raw, attrs)]


@pytest.mark.parametrize("source", sorted(SOURCES))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_the_parse_refuses_exactly_the_unencodable_payloads_naming_the_field(
    source: str, data: Any
) -> None:
    """What every transport does first: valid text passes, a lone surrogate is refused and the
    error names where it was."""
    raw = data.draw(with_hostile_text(SOURCES[source][1]))
    encoded = json.dumps(raw)  # ASCII, surrogates written as \\udXXX escapes
    decoded = json.loads(encoded)  # a high and a low surrogate side by side become one character
    broken = jsontext.unencodable_path(decoded)
    if broken is None:
        assert jsontext.loads(encoded) == decoded
        return
    with pytest.raises(jsontext.JsonLimitError) as caught:
        jsontext.loads(encoded)
    assert caught.value.status == 400
    assert caught.value.field == (broken or "body")
    assert "not valid Unicode" in caught.value.message
    json.dumps(caught.value.to_json(), ensure_ascii=False).encode()  # the answer encodes


@given(parts=st.lists(hostile_text, max_size=4))
def test_stable_id_takes_any_text(parts: list[str]) -> None:
    assert stable_id("src", *parts) == stable_id("src", *parts)
    assert stable_id("src", *parts).startswith("src:")


@pytest.fixture(params=["memory", "sqlite"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    if request.param == "memory":
        return MemoryStateStore
    return lambda: SqliteStateStore(tmp_path / f"state-{uuid.uuid4().hex}.db")


NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=hostile_text, other=hostile_text, text=hostile_text)
def test_the_stores_take_any_text_as_keys_and_values(
    store_factory: Callable[[], Any], key: str, other: str, text: str
) -> None:
    store = store_factory()
    ttl = timedelta(minutes=10)
    dedup = DedupKey(f"hook|src|type|{key}")
    assert store.claim(key=dedup, ttl=ttl, now=NOW)
    assert not store.claim(key=dedup, ttl=ttl, now=NOW)
    if other != key:
        assert store.claim(key=DedupKey(f"hook|src|type|{other}"), ttl=ttl, now=NOW)
    store.confirm(key=dedup, outcome="dispatched", task_id=text)
    store.release(key=dedup)
    assert store.claim(key=dedup, ttl=ttl, now=NOW)
    store.record(
        Firing(
            key=dedup,
            hook=text,
            event_id=text,
            event_type="t",
            source="src",
            resource=text,
            agent=text,
            prompt_hash="h",
            outcome="dispatched",
            at=NOW,
            error=text,
            extra={text: text},
        )
    )
    assert len(store.firings(limit=10)) == 1
    assert store.take_slot(key=key, limit=1, window=ttl, now=NOW)
    assert not store.take_slot(key=key, limit=1, window=ttl, now=NOW)
    summary = Summary(count=1, first=NOW, last=NOW, resources=(text,), reasons=(text,))
    backlog_key = BacklogKey(BacklogKind.BUDGET, key)
    store.add_backlog(key=backlog_key, backlog=Backlog(summary=summary, hook=text, event=text))
    assert store.take_backlog(key=backlog_key) is not None
    store.record_failure(key=key, threshold=1, cool_down=ttl, now=NOW)
    store.circuit_state(key=key, now=NOW)
    store.record_success(key=key)
