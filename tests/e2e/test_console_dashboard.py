"""The dashboard over ``khook up`` after the demo's events: what the browser shows is what the
console API of the running stack answers (headless Chromium; screenshot kept as an artifact)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.test_local_stack import (  # noqa: F401  (start_stack is a fixture)
    send_one_event_per_source,
    start_stack,
    stop_and_check_nothing_is_left,
)
from tests.support.browser import artifacts_dir

PROMPTS = 7
"""One event per source, plus a GitHub delivery: each reaches the demo agent."""


def api(url: str, token: str, path: str) -> Any:
    request = urllib.request.Request(url.rstrip("/") + path)
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_dashboard_shows_the_local_stacks_firings_and_health(
    start_stack: Any,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    browser: Any,
) -> None:
    stack = start_stack("--bus", "memory", "--no-forwarder")
    info = stack.wait_ready()
    console = info.functions["console"]
    assert console.token
    assert f"  dashboard  {console.url}#token={console.token}" in stack.console()
    send_one_event_per_source(stack, tmp_path)
    stack.wait_prompts(PROMPTS)

    browser.get(f"{console.url}#token={console.token}")
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready"
    )
    browser.save_screenshot(str(artifacts_dir() / "console-local-stack.png"))

    firings = api(console.url, console.token, "/api/v1/firings")["firings"]
    assert len(firings) == PROMPTS
    shown = browser.find_elements(By.CSS_SELECTOR, "#firings tbody tr")
    assert [row.get_attribute("data-event-id") for row in shown] == [f["event_id"] for f in firings]
    counts = api(console.url, console.token, "/api/v1/counts")
    bars = browser.execute_script(
        "const c = Chart.getChart(document.getElementById('timeline'));"
        "return Object.fromEntries(c.data.datasets.map("
        "  (d) => [d.label, d.data.reduce((a, b) => a + b, 0)]));"
    )
    assert bars == counts["totals"]["decision"] == {"dispatched": PROMPTS}
    health = api(console.url, console.token, "/api/v1/health")["sources"]
    cells = {
        row.get_attribute("data-source"): row.find_elements(By.TAG_NAME, "td")[1].text
        for row in browser.find_elements(By.CSS_SELECTOR, "#health tbody tr")
    }
    assert cells == {s["source"]: s["state"] for s in health}
    assert set(cells.values()) == {"ok"}

    stop_and_check_nothing_is_left(stack, info)
