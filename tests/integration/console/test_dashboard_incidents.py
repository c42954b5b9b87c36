"""Incidents on the dashboard, in real headless Chromium: the table shows what
``/api/v1/incidents`` answers (the incidents are conftest.py's ``bad_deploy``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.console.conftest import BadDeploy
from tests.integration.console.test_console_api import get
from tests.integration.console.test_dashboard import open_page, rows
from tests.support.browser import artifacts_dir
from tests.support.functions import FunctionServer

pytestmark = pytest.mark.parametrize("scenario", ["sqlite"], indirect=True)


def test_the_dashboard_shows_the_incidents_the_api_lists(
    browser: Any, console: FunctionServer, bad_deploy: BadDeploy
):
    open_page(browser, console)
    browser.save_screenshot(str(artifacts_dir() / "console-incidents.png"))
    listed = get(console, "/api/v1/incidents")["incidents"]
    shown = rows(browser, "incidents")

    assert [(r[0], r[2], r[5], r[8]) for r in shown] == [
        (i["id"], i["workload"], str(i["events"]), str(i["follow_ups"])) for i in listed
    ]
    assert [r[1] for r in shown] == ["open", "closed (quiet)"]
    checkout = shown[0]
    assert checkout[7] == listed[0]["runs"][0]["task_id"]
    assert "alertmanager/" in checkout[6]
    assert checkout[4] == ""  # still open
