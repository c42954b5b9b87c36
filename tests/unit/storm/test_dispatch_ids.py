"""A firing's message and context ids, hashed from the key once (``keys.dispatch_ids``), are the
ids ``keys.digest`` gives each: what agents already hold for a conversation stays valid."""

from __future__ import annotations

import pytest

from khook_core.storm import keys
from khook_core.storm.records import DedupKey

KEYS = [
    "shop/web|kubernetes|pod-restart|shop/Pod/web-0|",
    "shop/web|alertmanager|pod-crash|shop/Pod/ж-😀|fp-1@2026-01-05T10:00:00Z",
    "x" * 200,  # longer than a hash block
    "",
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("event_id", ["kubernetes:7a4aad937fa1c824d62ffaf3", "", "é\x1f"])
def test_the_ids_are_the_digests_of_the_key_and_the_event(key: str, event_id: str):
    message_id, context_id = keys.dispatch_ids(DedupKey(key), event_id)
    assert message_id == f"khook-{keys.digest(key, event_id)}"
    assert context_id == f"khook-{keys.digest(key)}"


def test_a_correlated_firings_conversation_is_its_incidents():
    message_id, context_id = keys.dispatch_ids(DedupKey(KEYS[0]), "e", "incident-7")
    assert (message_id, context_id) == (f"khook-{keys.digest(KEYS[0], 'e')}", "incident-7")
