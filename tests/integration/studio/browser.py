"""Headless Debian Chromium driven by selenium through the system chromedriver (no browser download)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1500,950")


def chromedriver() -> str | None:
    for cand in ("/usr/bin/chromedriver", shutil.which("chromedriver")):
        if cand and Path(cand).exists():
            return cand
    return None


def available() -> bool:
    return Path(CHROMIUM).exists() and chromedriver() is not None


def start():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver()), options=opts)


def wait_for(driver, script: str, timeout: float = 15.0, what: str = "", args: tuple = ()):
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = driver.execute_script(f"return ({script});", *args)
        if last:
            return last
        time.sleep(0.05)
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    raise AssertionError(f"timed out waiting for {what or script} (last: {last!r}; browser errors: {errors})")
