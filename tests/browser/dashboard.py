"""Drives /dashboard in headless Chromium (tests/api/dashboard.rs runs it):

    python3 tests/browser/dashboard.py BASE_URL API_KEY SCREENSHOT_DIR

It signs in with the API key, sees the viewer count and the chart move after the test issues
viewer tokens, sees a room appear when a streamer starts a stream and a gift change its top
givers, sees events arrive in the tail and the type filter keep only matching ones, and fails on
any console error. Exit status 0 when everything was seen.
"""

import sys

from selenium.webdriver.common.by import By

from browser import Browser, log, step


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def main():
    base, api_key, screenshots = sys.argv[1], sys.argv[2], sys.argv[3]
    b = Browser(screenshots)
    d = b.driver
    try:
        d.get(base + "/dashboard")
        b.wait(lambda d: d.find_element(By.ID, "sign-in").is_displayed(), "the sign-in form")
        d.find_element(By.ID, "api-key").send_keys(api_key)
        d.find_element(By.ID, "sign-in-button").click()
        b.wait(lambda d: d.find_element(By.ID, "board").is_displayed(), "the board after signing in")
        b.wait(lambda d: text(d, "total-viewers") == "0", "0 viewers at first")
        assert api_key not in d.current_url, "the key must not be in the URL"
        stored = d.execute_script("return sessionStorage.getItem('onair.dashboard.credentials')")
        assert stored and api_key in stored, "the key is kept in sessionStorage"
        b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer-chart canvas"), "the viewer chart")
        b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#stages .stage"), "the master stage's bar")
        b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#projections tbody tr"), "projection rows")
        b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#instances li"), "this API instance")
        chart = d.find_element(By.ID, "viewer-chart")
        log(f"signed in; chart last={chart.get_attribute('data-last')!r}")
        b.screenshot("dashboard-signed-in")

        viewers = step("viewers")["viewers"]
        b.wait(lambda d: text(d, "total-viewers") == str(viewers), f"{viewers} viewers")
        b.wait(
            lambda d: d.find_element(By.ID, "viewer-chart").get_attribute("data-last") == str(viewers),
            f"the chart's last point at {viewers}",
        )
        b.wait(
            lambda d: f"{viewers} / " in d.find_element(By.CSS_SELECTOR, "#stages .stage .count").text,
            "the master stage's fill",
        )
        b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#tail tbody tr"), "events in the tail")
        b.wait(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#tail tbody tr[data-type*='viewer']"),
            "a viewer event in the tail",
        )

        streamer = step("room")["streamer"]
        room = f"#rooms tbody tr[data-streamer='{streamer}']"
        b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, room), f"the live room of {streamer}")
        b.wait(lambda d: text(d, "live-rooms") == "1", "one live room")

        giver = step("gift")["giver"]
        b.wait(
            lambda d: giver in d.find_element(By.CSS_SELECTOR, room + " td.givers").text,
            f"{giver} among the room's top givers",
        )
        b.wait(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#tail tbody tr[data-type*='gift']"),
            "the gift event in the tail",
        )
        b.screenshot("dashboard")

        d.find_element(By.ID, "type-filter").send_keys("gift")

        def only_gifts(d):
            # One look at the whole table (the tail is re-filled when the filter changes).
            return d.execute_script(
                "const rows = [...document.querySelectorAll('#tail tbody tr')];"
                "return rows.length > 0 && rows.every(r => r.dataset.type.includes('gift'));"
            )

        b.wait(only_gifts, "only gift events once filtered by type")
        b.screenshot("dashboard-filtered")
        b.assert_no_console_errors()
        log("DONE")
    finally:
        try:
            b.collect_console()
        except Exception:
            pass
        b.quit()


if __name__ == "__main__":
    main()
