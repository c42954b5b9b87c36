"""The cheap paths of the redaction step: a short token-like text is vouched for without an
anchor search, and a nested map seen clean (an alert storm's annotations) is not scanned
again, yet a secret still never slips through either."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from khook_core.event import Event, EventId, Resource, Severity
from khook_core.redaction import redactor as redactor_module
from khook_core.redaction.detectors import PLAIN_MAX, plain, scan
from khook_core.redaction.redactor import Redactor
from tests.support.credentials import corpus

KEY = b"q" * 32
TOKEN_CHARS = st.sampled_from("abcxyzAKIAXOB0123456789._/-")


@given(st.text(TOKEN_CHARS, max_size=PLAIN_MAX))
def test_no_detector_matches_a_text_the_precheck_vouches_for(text: str) -> None:
    assert plain(text)
    assert scan(text) == []


def test_the_precheck_stops_short_of_the_shortest_credential() -> None:
    shortest = "xoxb-1234567890"  # a Slack token: the shortest format of letters and dashes
    assert len(shortest) == PLAIN_MAX + 1
    assert not plain(shortest)
    assert [hit.kind for hit in scan(shortest)] == ["slack-token"]
    assert Redactor(KEY).text(shortest).startswith("[redacted:slack-token:")


@pytest.mark.parametrize("credential", corpus(), ids=lambda c: c.name)
def test_no_credential_passes_the_precheck(credential: Any) -> None:
    assert not plain(credential.text)
    assert not plain(credential.secret)


def alert(annotations: dict[str, Any]) -> Event:
    return Event(
        id=EventId("alertmanager:1"),
        source="alertmanager",
        type="disk-full",
        severity=Severity.WARNING,
        resource=Resource(kind="Node", name="db-1"),
        reason="DiskFull",
        message="Filesystem almost full",
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
        metadata={"annotations": annotations, "labels": {"team": "db"}},
    )


def test_a_nested_map_seen_clean_is_not_scanned_again_but_a_changed_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scans: list[str] = []
    real_scan = scan

    def counting(text: str) -> Any:
        scans.append(text)
        return real_scan(text)

    monkeypatch.setattr(redactor_module, "scan", counting)
    redactor = Redactor(KEY)
    clean = {"runbook_url": "https://runbooks.example.com/disk", "summary": "token bucket full"}
    storm = [alert(dict(clean)) for _ in range(50)]

    assert redactor.events(storm) == storm
    assert sum("runbook_url" in text for text in scans) == 1

    leaked = alert({**clean, "note": "password=hunter2"})
    [after] = redactor.events([leaked])
    assert "hunter2" not in repr(after.metadata)
    assert after.metadata["annotations"]["note"].startswith("password=[redacted:secret-pair:")
