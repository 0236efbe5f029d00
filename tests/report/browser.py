"""Headless Chromium under Selenium for the page tests: Debian's chromium and chromium-driver
(tests/install-browser puts them there), or the browser and driver that GEXNET_CHROMIUM and
GEXNET_CHROMEDRIVER name. No browser is a failure with the fix in its message, never a skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def _find(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((p for p in map(shutil.which, names) if p), None)


def start(download_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = _find("GEXNET_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    driver = _find("GEXNET_CHROMEDRIVER", ("chromedriver",))
    if browser is None or driver is None:
        pytest.fail(
            "the page tests need Chromium and its driver: run tests/install-browser (Debian: "
            "apt-get install chromium chromium-driver), or set GEXNET_CHROMIUM and "
            "GEXNET_CHROMEDRIVER", pytrace=False,
        )  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1500", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir), "download.prompt_for_download": False,
    })  # fmt: skip
    return webdriver.Chrome(service=Service(driver), options=options)
