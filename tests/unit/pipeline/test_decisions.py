"""Decision kinds are an enum whose text is exactly what JSON, logs and the audit trail showed."""

from __future__ import annotations

import json
import logging

import pytest

from khook_core.decisions import Decision, DecisionKind, DropReason, parse


def test_a_kind_shows_as_its_text_in_json_logs_and_formatting(caplog: pytest.LogCaptureFixture):
    decision = Decision(DecisionKind.FAILED_CIRCUIT_OPEN, hook="shop/web", retryable=True)

    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("decided %s", decision.decision)

    assert json.dumps(decision.to_json()).startswith('{"decision": "failed:circuit-open", ')
    assert caplog.messages == ["decided failed:circuit-open"]
    assert f"{decision.decision} ({decision.hook})" == "failed:circuit-open (shop/web)"
    assert type(str(decision.kind)) is str


def test_a_drop_is_one_kind_with_the_pipelines_or_a_sources_reason():
    ours = Decision.dropped(DropReason.HOOK_GONE, key="budget|shop/web|pod-restart")
    theirs = Decision.dropped("pagerduty-incident-acknowledged")

    assert (ours.kind, ours.reason) == (DecisionKind.DROPPED, "hook-gone")
    assert ours.decision == "dropped:hook-gone"
    assert json.loads(json.dumps(theirs.to_json()))["decision"] == (
        "dropped:pagerduty-incident-acknowledged"
    )


@pytest.mark.parametrize("kind", [k for k in DecisionKind if k is not DecisionKind.DROPPED])
def test_every_kind_reads_back_from_its_text(kind: DecisionKind):
    assert parse(Decision(kind).decision) == (kind, "")


def test_a_drop_reads_back_with_its_reason_and_an_unknown_text_is_refused():
    assert parse("dropped:stale") == (DecisionKind.DROPPED, "stale")
    with pytest.raises(ValueError, match="failed:nonsense"):
        parse("failed:nonsense")
