"""Query strings into store filters, and the static files the page may load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from khook_core.console import api, queries
from khook_core.errors import InvalidEventError
from khook_core.state.base import FiringFilter

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_every_filter_parameter_maps_to_its_field():
    where = queries.firing_filter(
        {
            "since": "2026-01-05T10:00:00Z",
            "until": "2026-01-05T12:30:00+01:00",
            "hook": "shop/web",
            "source": "kubernetes",
            "type": "pod-restart",
            "resource": "shop/Pod/web-0",
            "decision": "dispatched",
        },
        default_since=None,
    )
    assert where == FiringFilter(
        since=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        until=datetime(2026, 1, 5, 11, 30, tzinfo=UTC),
        hook="shop/web",
        source="kubernetes",
        event_type="pod-restart",
        resource="shop/Pod/web-0",
        outcome="dispatched",
    )


def test_a_plus_offset_decoded_as_a_space_still_parses():
    got = queries.parse_time({"since": "2026-01-05T10:00:00 01:00"}, "since")
    assert got == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_counts_default_to_the_last_day_in_about_48_buckets():
    query = queries.counts_query({}, NOW)
    assert (query.since, query.until) == (NOW - timedelta(hours=24), NOW)
    assert query.bucket == timedelta(minutes=30)
    assert queries.counts_query({"since": "2026-01-05T11:50:00Z"}, NOW).bucket == timedelta(
        minutes=1
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"since": "2026-01-05"}, "since"),
        ({"until": "noon"}, "until"),
        ({"bucket": "x"}, "bucket"),
        ({"bucket": "0"}, "bucket"),
        ({"bucket": "10"}, "bucket"),  # 8,640 buckets in a day
        ({"since": "2026-01-05T12:00:00Z", "until": "2026-01-05T12:00:00Z"}, "until"),
    ],
)
def test_bad_counts_parameters_name_themselves(args: dict[str, str], field: str):
    with pytest.raises(InvalidEventError) as caught:
        queries.counts_query(args, NOW)
    assert (caught.value.status, caught.value.field) == (400, field)


def test_the_page_may_load_its_files_and_nothing_else():
    assert {"index.html", "dashboard.js", "dashboard.css", "vendor/chart.umd.min.js"} <= set(
        api.STATIC_FILES
    )
    assert not any(".." in name or name.endswith(".py") for name in api.STATIC_FILES)


def test_the_vendored_chart_library_keeps_its_licence_beside_it():
    vendor = api.STATIC_DIR / "vendor"
    assert "MIT License" in (vendor / "chart.js.LICENSE.md").read_text()
    assert (vendor / "chart.umd.min.js").read_text().startswith("/*!\n * Chart.js v4.5.1")
