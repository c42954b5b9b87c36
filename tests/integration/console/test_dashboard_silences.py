"""Silences on the dashboard: the table lists them, the timeline shades the buckets they span.

Silences are added to the scenario's store (this module's own) and read back through
``/api/v1/silences`` by the page in real headless Chromium.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from khook_core.state import open_silence_store
from khook_core.state.base import SilenceRecord
from tests.integration.console.test_dashboard import api, open_page, rows
from tests.support.browser import artifacts_dir
from tests.support.console import Scenario
from tests.support.functions import FunctionServer

pytestmark = pytest.mark.parametrize("scenario", ["sqlite"], indirect=True)


def record(id: str, start: datetime, end: datetime, comment: str) -> SilenceRecord:
    return SilenceRecord(
        id=id,
        matcher='event.resource.namespace == "payments"',
        author="ana",
        comment=comment,
        starts_at=start,
        ends_at=end,
        created_at=start,
    )


def test_silences_are_listed_and_shaded_on_the_timeline(
    browser: Any, console: FunctionServer, scenario: Scenario
):
    now = datetime.now(UTC)
    first, last = scenario.restarts_at[0], scenario.restarts_at[-1]
    store = open_silence_store(scenario.state)
    try:
        for silence in (
            record("storm", first - timedelta(minutes=1), last + timedelta(minutes=1), "upgrade"),
            record("now", now - timedelta(minutes=5), now + timedelta(hours=1), "migration"),
            record("old", now - timedelta(days=3), now - timedelta(days=2), "long ago"),
        ):
            store.add_silence(silence=silence)
    finally:
        store.close()

    open_page(browser, console)
    browser.save_screenshot(str(artifacts_dir() / "console-silences.png"))
    listed = api(console, "/api/v1/silences?all=1")["silences"]
    shown = rows(browser, "silences")
    assert [(r[0], r[1], r[6]) for r in shown] == [
        (s["id"], s["state"], s["comment"]) for s in listed
    ]
    assert [r[0] for r in shown] == ["now", "storm", "old"]
    on_timeline = {
        row.get_attribute("data-silence"): row.get_attribute("data-on-timeline")
        for row in browser.find_elements(By.CSS_SELECTOR, "#silences tbody tr")
    }
    assert on_timeline == {"now": "true", "storm": "true", "old": "false"}

    counts = api(console, "/api/v1/counts")
    step = counts["bucket_seconds"]
    since = datetime.fromisoformat(counts["since"].replace("Z", "+00:00")).timestamp()
    origin = math.floor(since / step) * step
    bands = {b["id"]: b for b in browser.execute_script("return window.khookDashboard.bands")}
    storm = bands["storm"]
    # The band covers the buckets of the storm's first and last restart.
    assert storm["first"] <= int((first.timestamp() - origin) // step)
    assert storm["last"] >= int((last.timestamp() - origin) // step)
    assert storm["last"] - storm["first"] < 4
    assert "old" not in bands
