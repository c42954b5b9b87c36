"""Each watch call is sized against the liveness limit, so /healthz tells stuck from quiet."""

from __future__ import annotations

from datetime import timedelta

import pytest

from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.watching import READ_MARGIN, WatchTimings


def timings(watch_timeout: int, dead_after: float | None) -> WatchTimings:
    return WatchTimings(
        lookback=timedelta(minutes=5),
        max_age=timedelta(minutes=15),
        relist_overlap=timedelta(seconds=30),
        watch_timeout=watch_timeout,
        page_size=500,
        empty_limit=2,
        empty_seconds=1.0,
        dead_after=dead_after,
    )


def test_by_default_a_watch_lasts_30_s_and_a_silent_one_is_cut_after_60_s():
    fields = ForwarderSettings.model_fields
    default = timings(fields["watch_timeout_seconds"].default, fields["dead_after_seconds"].default)

    assert fields["dead_after_seconds"].default == 120
    assert default.call_timeouts() == (30, 60.0)


@pytest.mark.parametrize("dead_after", [4, 7.5, 60, 120, 600, 3600])
@pytest.mark.parametrize("watch_timeout", [1, 30, 300, 1800])
def test_a_quiet_watch_never_lapses_and_a_stuck_one_heals_before_the_limit(
    watch_timeout: int, dead_after: float
):
    server, read = timings(watch_timeout, dead_after).call_timeouts()

    assert 1 <= server <= watch_timeout
    # A quiet, healthy watch ends (with a bookmark) and makes contact well inside the limit.
    assert server <= dead_after / 4
    # The client never cuts a watch the server is about to end, whatever the clock skew.
    assert read - server == min(READ_MARGIN, dead_after / 4)
    # A stuck stream's silence, then a quiet resumed watch: contact still comes in time, with
    # a quarter of the limit left for the backoff in between.
    assert read + server <= dead_after * 3 / 4


def test_without_a_liveness_limit_the_configured_timeout_is_kept():
    assert timings(300, None).call_timeouts() == (300, 300 + READ_MARGIN)


def test_a_resource_version_of_other_digits_is_not_a_number() -> None:
    from khook_core.forwarder.watching import version_number

    assert version_number("12345") == 12345
    assert version_number("¹²") is None
