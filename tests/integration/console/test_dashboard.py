"""The dashboard in real headless Chromium: what it shows is what the API answers.

The page is served by functions/console over data real pipeline runs wrote (conftest.py),
including a storm that storm control's rate limit suppressed; screenshots are kept as artifacts
(tests/support/browser.py).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import artifacts_dir
from tests.support.console import RATE_LIMIT, RESTARTS, TOKEN
from tests.support.functions import FunctionServer

# The page reads only the API, whatever stores it: one backend is enough here.
pytestmark = pytest.mark.parametrize("scenario", ["sqlite"], indirect=True)

SUPPRESSED_COLOR = "#fb8c00"


def api(server: FunctionServer, path: str) -> Any:
    request = urllib.request.Request(
        server.url + path, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def open_page(browser: Any, server: FunctionServer, fragment: str = f"#token={TOKEN}") -> None:
    browser.get(f"{server.url}/{fragment}")
    try:
        WebDriverWait(browser, 60).until(
            lambda b: (
                b.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                in ("ready", "error")
            )
        )
    except TimeoutException:
        console = browser.get_log("browser")
        raise AssertionError(f"the page never finished loading; its console: {console}") from None


def rows(browser: Any, table: str) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    ]


CHART_BARS = """
const chart = Chart.getChart(document.getElementById('timeline'));
return chart.data.datasets.map((ds, i) => ({
  label: ds.label,
  color: ds.backgroundColor,
  total: ds.data.reduce((a, b) => a + b, 0),
  nonzero: ds.data.filter((n) => n > 0).length,
  drawn: chart.getDatasetMeta(i).data.filter((bar) => !chart.getDatasetMeta(i).hidden
                                               && Math.abs(bar.base - bar.y) >= 1).length,
}));
"""


def test_the_dashboard_shows_the_apis_numbers(browser: Any, console: FunctionServer):
    open_page(browser, console)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready"
    browser.save_screenshot(str(artifacts_dir() / "console-dashboard.png"))

    counts = api(console, "/api/v1/counts")
    bars = {bar["label"]: bar for bar in browser.execute_script(CHART_BARS)}
    assert {label: bar["total"] for label, bar in bars.items()} == counts["totals"]["decision"]
    for bar in bars.values():  # every non-zero bucket is a visible bar segment
        assert bar["drawn"] == bar["nonzero"] > 0, bar
    # The storm: what the rate limit suppressed is its own visible band.
    suppressed = bars["suppressed:budget"]
    assert suppressed["total"] == RESTARTS - RATE_LIMIT
    assert suppressed["color"] == SUPPRESSED_COLOR
    assert rows(browser, "decision-totals") == [
        [decision, str(n)] for decision, n in counts["totals"]["decision"].items()
    ]

    firings = api(console, "/api/v1/firings?limit=50")["firings"]
    shown = rows(browser, "firings")
    assert len(shown) == len(firings)
    for row, firing in zip(shown, firings, strict=True):
        assert row[1:7] == [
            firing["hook"],
            firing["decision"],
            firing["source"],
            firing["type"],
            firing["resource"],
            firing["agent"],
        ]
        assert row[7] == (firing["task_id"] or "")

    held = api(console, "/api/v1/backlogs")
    assert browser.find_element(By.ID, "held-total").get_attribute("data-total") == str(
        held["held_total"]
    )
    assert [r[:3] for r in rows(browser, "backlogs")] == [
        [b["key"], b["hook"], str(b["held"])] for b in held["backlogs"]
    ]
    assert [r[:3] for r in rows(browser, "circuits")] == [
        [c["key"], c["state"], str(c["failures"])] for c in held["circuits"]
    ]

    health = api(console, "/api/v1/health")["sources"]
    assert [(r[0], r[1], r[3]) for r in rows(browser, "health")] == [
        (s["source"], s["state"], str(s["errors_last_hour"])) for s in health
    ]
    failing = browser.find_element(
        By.CSS_SELECTOR, "#health tr[data-source=kubernetes] td:nth-child(2)"
    )
    assert failing.get_attribute("class") == "state-failing"

    hooks = api(console, "/api/v1/hooks")["hooks"]
    assert [r[:2] for r in rows(browser, "hooks")] == [[h["name"], h["status"]] for h in hooks]


def test_choosing_a_hook_narrows_the_timeline_to_it(browser: Any, console: FunctionServer):
    open_page(browser, console)
    loads = browser.execute_script("return window.khookDashboard.loads")
    browser.execute_script(
        "const s = document.getElementById('hook'); s.value = 'shop/oom';"
        "s.dispatchEvent(new Event('change'));"
    )
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return window.khookDashboard.loads") > loads
    )
    bars = browser.execute_script(CHART_BARS)
    counts = api(console, "/api/v1/counts?hook=shop/oom")
    assert {bar["label"]: bar["total"] for bar in bars} == counts["totals"]["decision"]
    assert rows(browser, "firings")
    assert {row[1] for row in rows(browser, "firings")} == {"shop/oom"}
    browser.save_screenshot(str(artifacts_dir() / "console-dashboard-oom.png"))


def test_without_the_token_the_page_says_the_api_refused(browser: Any, console: FunctionServer):
    browser.get("about:blank")
    browser.get(console.url + "/")
    browser.execute_script("sessionStorage.clear()")
    open_page(browser, console, fragment="")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "error"
    assert "401" in browser.find_element(By.ID, "error").text
