"""Headless Chromium driven by selenium: Debian's ``chromium`` and ``chromium-driver``.

``browser`` skips locally when either is missing (saying what to install) and fails in CI.
Screenshots go to ``KHOOK_TEST_ARTIFACTS`` (default ``.khook/test-artifacts``), kept after the
run so a reviewer or a CI job can look at what the browser showed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"
INSTALL = "apt-get install chromium chromium-driver"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("KHOOK_TEST_ARTIFACTS") or REPO / ".khook" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and headless Chromium is unavailable: {reason}")
    pytest.skip(f"{reason}; install with `{INSTALL}`")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (a fresh page per ``get``)."""
    binary = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    driver_path = shutil.which(DRIVER)
    if binary is None or driver_path is None:
        _unavailable(f"chromium ({binary}) or chromedriver ({driver_path}) not on PATH")
    assert binary is not None
    assert driver_path is not None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors in failures
    for argument in (
        "--headless=new",
        "--no-sandbox",  # containers run tests as root, where the sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1800",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()
