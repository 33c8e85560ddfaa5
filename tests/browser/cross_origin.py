"""Runs the seeds' browser examples from another origin in headless Chromium
(tests/api/dashboard.rs serves the page and starts onair with ONAIR_CORS_ORIGINS = its origin):

    python3 tests/browser/cross_origin.py PAGE_URL SCREENSHOT_DIR

The page (tests/browser/cross_origin/) runs the Stage API's `fetch` example (a viewer token,
then a heartbeat) and the gateway's axios-style call (loginAction, then sendGift with the
interceptor's Authorization) against onair. Both must succeed, with no console error (a refused
cross-origin call is one). Prints the page's results as JSON.
"""

import json
import sys

from selenium.webdriver.common.by import By

from browser import Browser, log


def main():
    page, screenshots = sys.argv[1], sys.argv[2]
    b = Browser(screenshots)
    try:
        b.driver.get(page)
        b.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "1",
               "the examples to finish")
        results = json.loads(b.driver.find_element(By.ID, "results").text)
        log("RESULTS " + json.dumps(results))
        b.screenshot("cross-origin")
        assert results["stageApi"]["ok"], f"the Stage API's fetch example failed: {results['stageApi']}"
        assert results["stageApi"]["eventSequence"], "X-Event-Sequence is exposed to the page"
        assert results["gateway"]["ok"], f"the gateway's axios-style call failed: {results['gateway']}"
        b.assert_no_console_errors()
        log("DONE")
    finally:
        b.quit()


if __name__ == "__main__":
    main()
