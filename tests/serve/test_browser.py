"""End to end: a real `lenet serve` (uvicorn) and headless Chromium drawing a 7 on the page."""

from __future__ import annotations

import shutil
import tempfile
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def driver():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver); not found on PATH")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lenetlab-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=900,800", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(drv, predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate(drv)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; status: "
                         f"{drv.find_element('id', 'status').text!r}")


def _stroke(drv, canvas, points):
    """Press at points[0], move through the rest in small steps, release (offsets from the canvas centre)."""
    from selenium.webdriver.common.action_chains import ActionChains

    rect = canvas.rect
    cx, cy = rect["width"] / 2, rect["height"] / 2
    chain = ActionChains(drv, duration=10)
    x0, y0 = points[0]
    chain.move_to_element_with_offset(canvas, int(x0 - cx), int(y0 - cy)).click_and_hold()
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        steps = max(1, int(max(abs(xb - xa), abs(yb - ya)) // 10))
        for i in range(1, steps + 1):
            t = i / steps
            chain.move_to_element_with_offset(canvas, int(xa + t * (xb - xa) - cx), int(ya + t * (yb - ya) - cy))
    chain.release().perform()


def _bars(drv) -> dict[str, float]:
    return {el.get_attribute("data-label"): float(el.get_attribute("data-p"))
            for el in drv.find_elements("css selector", "#bars .bar-fill")}


def test_draw_a_seven_and_see_7(driver, live_server, images):
    driver.get(live_server + "/")
    _wait(driver, lambda d: "lenet5" in d.find_element("id", "model").text, what="the model name from /health")
    status = driver.find_element("id", "status")
    assert status.text == "draw a digit"  # blank canvas: no guess
    canvas = driver.find_element("id", "pad")
    assert canvas.value_of_css_property("touch-action") == "none"

    _stroke(driver, canvas, [(80, 70), (200, 70), (130, 225)])  # a '7': top bar, then the diagonal
    _wait(driver, lambda d: d.find_element("id", "status").get_attribute("data-state") == "ok",
          what="a prediction")
    time.sleep(0.5)  # let the final (post-release) request land
    _wait(driver, lambda d: d.find_element("id", "status").get_attribute("data-state") == "ok", what="a prediction")
    digit = driver.find_element("id", "digit").text
    bars = _bars(driver)
    images.artifacts.mkdir(exist_ok=True)
    driver.save_screenshot(str(images.artifacts / "serve_draw_seven.png"))
    assert sorted(bars) == [str(i) for i in range(10)]
    assert abs(sum(bars.values()) - 1) < 1e-3
    assert digit == "7", f"the drawn 7 was read as {digit!r}; probabilities {bars}"
    assert max(bars, key=bars.get) == "7"
    seen = driver.find_element("id", "input28")
    assert seen.is_displayed() and seen.get_attribute("src").startswith("data:image/png;base64,")

    driver.find_element("id", "clear").click()
    _wait(driver, lambda d: d.find_element("id", "status").text == "draw a digit", what="the cleared page")
    assert driver.find_element("id", "digit").text == "?"
    assert max(_bars(driver).values()) == 0

    _stroke(driver, canvas, [(140, 50), (140, 235)])  # a '1'
    _wait(driver, lambda d: d.find_element("id", "digit").text == "1", what="the digit 1")
    driver.save_screenshot(str(images.artifacts / "serve_draw_one.png"))
