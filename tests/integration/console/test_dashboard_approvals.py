"""Open approvals on the dashboard, decided from the page, in real headless Chromium.

The kubernetes and sweep functions (in process) and the a2a-sdk test agent pausing its task for
two tool calls, as in the approvals' HITL loop; functions/console served over HTTP on the same
SQLite state file. The page lists the approval from ``/api/v1/approvals`` and its button POSTs
the decision, which completes the agent's task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from khook_core.runtime import get_runtime
from tests.integration.approvals.test_hitl_loop import (
    TOOLS,
    decisions_sent,
    functions,
    paused,
    state,
)
from tests.integration.console.test_dashboard import open_page, rows
from tests.integration.tracking.test_polling import audit
from tests.support.a2a_agent import TestAgent
from tests.support.browser import artifacts_dir
from tests.support.functions import FunctionServer
from tests.support.sweep import tick_until

__all__ = ["functions", "state"]  # fixtures, used by name

TOKEN = "approvals-page-token"
MARKUP = "<img src=x onerror=window.pwned=1>"


@pytest.fixture
def wire() -> str:
    return "1.0"


@pytest.fixture
def page_console(
    functions: tuple[Any, Any], a2a_agent: TestAgent, tmp_path: Path
) -> Iterator[FunctionServer]:
    server = FunctionServer(
        "console", tmp_path / "console.log", {"KHOOK_CONSOLE_TOKEN": TOKEN}, "http"
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_an_open_approval_is_listed_and_approving_it_completes_the_task(
    browser: Any,
    functions: tuple[Any, Any],
    page_console: FunctionServer,
    a2a_agent: TestAgent,
) -> None:
    kubernetes, sweep = functions
    request: dict[str, Any] = json.loads(json.dumps(TOOLS))
    request["tools"][0]["args"]["name"] = MARKUP
    a2a_agent.hitl = request
    approval = paused(kubernetes, sweep)

    open_page(browser, page_console, f"#token={TOKEN}")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready"
    browser.save_screenshot(str(artifacts_dir() / "console-approvals.png"))
    [shown] = rows(browser, "approvals")
    assert shown[:4] == [approval.id, approval.task_id, approval.hook, approval.agent]
    assert "conf-1: restart_pod" in shown[4]
    assert MARKUP in shown[4]  # the agent's arguments are text, never markup
    assert "conf-2: scale_deployment" in shown[4]
    assert '"replicas":3' in shown[4]
    assert shown[5].startswith(approval.deadline.strftime("%Y-%m-%d %H:%M"))
    assert browser.find_elements(By.CSS_SELECTOR, "#approvals img") == []
    assert browser.execute_script("return window.pwned") is None

    browser.find_element(By.ID, "decider").send_keys("ana")
    loads = browser.execute_script("return window.khookDashboard.loads")
    browser.find_element(By.CSS_SELECTOR, "#approvals button[data-action=approve]").click()
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return window.khookDashboard.loads") > loads
    )
    assert browser.find_element(By.ID, "decision-error").get_attribute("hidden") is not None
    assert rows(browser, "approvals") == []  # decided: no longer open

    tick_until(sweep, lambda: any(f.outcome == "task:completed" for f in audit()))
    [sent] = decisions_sent(a2a_agent)
    assert sent["message"]["taskId"] == approval.task_id
    assert a2a_agent.decisions == [
        {
            "type": "tool_approval_response",
            "approvals": [{"id": "conf-1", "approved": True}, {"id": "conf-2", "approved": True}],
        }
    ]
    stored = get_runtime().approval_store().get_approval(id=approval.id)
    assert stored is not None
    assert (stored.state, stored.decided_by, stored.sent) == ("approved", "ana (console)", "sent")
