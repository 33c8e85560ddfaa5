"""Shared steps of the browser tests (run by tests/api/dashboard.rs with Debian's
python3-selenium): headless Chromium through chromedriver, explicit waits, screenshots, the
browser console checked for errors, and a line protocol with the Rust test on stdin/stdout.

Protocol: the script prints `STEP <name>` when it needs the test to act (issue viewer tokens,
start a stream, send a gift) and reads one JSON line back with what the test did. Everything else
it prints is a log line for the test's output.
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

WAIT_SECONDS = float(os.environ.get("ONAIR_BROWSER_WAIT_SECONDS", "20"))


def log(*parts):
    print(*parts, flush=True)


def step(name):
    """Asks the Rust test to act and returns its JSON answer."""
    log(f"STEP {name}")
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(f"the test closed stdin before answering step {name}")
    return json.loads(line)


class Browser:
    """A headless Chromium whose console errors are collected and fail the test."""

    def __init__(self, screenshots):
        options = Options()
        for arg in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1400,1700",
            "--no-first-run",
            "--disable-extensions",
        ):
            options.add_argument(arg)
        options.binary_location = os.environ.get("ONAIR_CHROMIUM", "/usr/bin/chromium")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=os.environ.get("ONAIR_CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.screenshots = screenshots
        self.console = []
        os.makedirs(screenshots, exist_ok=True)

    def wait(self, condition, what):
        """Waits until `condition(driver)` is truthy; fails naming `what` (with a screenshot).
        The page re-renders its tables with every update, so an element found a moment ago may
        be gone: such a try is just retried."""
        try:
            return WebDriverWait(
                self.driver,
                WAIT_SECONDS,
                poll_frequency=0.1,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(condition)
        except Exception as e:
            self.screenshot("failed")
            raise AssertionError(f"not seen within {WAIT_SECONDS} s: {what}") from e

    def screenshot(self, name):
        path = os.path.join(self.screenshots, f"{name}.png")
        self.driver.save_screenshot(path)
        log(f"screenshot {path}")
        return path

    def collect_console(self):
        for entry in self.driver.get_log("browser"):
            self.console.append(entry)
            log(f"console {entry['level']}: {entry['message']}")

    def assert_no_console_errors(self):
        self.collect_console()
        severe = [e for e in self.console if e["level"] == "SEVERE"]
        assert not severe, f"console errors: {severe}"

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass
