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
        pytest.skip(
            "headless browser test needs Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver); not found on PATH"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lenetlab-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=900,800",
        f"--user-data-dir={profile}",
    ):
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
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what}; status: {drv.find_element('id', 'status').text!r}"
    )


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
    return {
        el.get_attribute("data-label"): float(el.get_attribute("data-p"))
        for el in drv.find_elements("css selector", "#bars .bar-fill")
    }


def test_draw_a_seven_and_see_7(driver, live_server, images):
    driver.get(live_server + "/")
    _wait(driver, lambda d: "lenet5" in d.find_element("id", "model").text, what="the model name from /health")
    status = driver.find_element("id", "status")
    assert status.text == "draw a digit"  # blank canvas: no guess
    canvas = driver.find_element("id", "pad")
    assert canvas.value_of_css_property("touch-action") == "none"

    _stroke(driver, canvas, [(80, 70), (200, 70), (130, 225)])  # a '7': top bar, then the diagonal
    _wait(driver, lambda d: d.find_element("id", "status").get_attribute("data-state") == "ok", what="a prediction")
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


@pytest.fixture(scope="module")
def three_models(free_port, images, lenet1998_ckpt, nin_ckpt):
    """`lenet serve` with three models: the shipped lenet5 (default), lenet5-1998 and the small NiN."""
    from lenetlab.inference.predictor import default_checkpoint

    proc, url = images.start_server([str(default_checkpoint()), str(lenet1998_ckpt), str(nin_ckpt)], free_port())
    yield url
    images.stop_server(proc)


def _layer_names(drv) -> list[str]:
    return [e.get_attribute("data-name") for e in drv.find_elements("css selector", "#layers .layer")]


def _maps(drv, name: str) -> int:
    return len(drv.find_elements("css selector", f'#layers .layer[data-name="{name}"] canvas.map'))


def _pick(drv, name: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element("id", "picker")).select_by_value(name)


def _answered(drv, name: str) -> bool:
    """The status shows an answer from model ``name`` and the layer view is fresh."""
    status = drv.find_element("id", "status")
    return (
        status.get_attribute("data-state") == "ok"
        and status.text.endswith(name)
        and "stale" not in (drv.find_element("id", "layers").get_attribute("class") or "")
    )


def test_every_layer_live_picker_and_phone_width(driver, three_models, images):
    driver.set_window_size(1280, 1320)
    driver.get(three_models + "/")
    _wait(driver, lambda d: len(d.find_elements("css selector", "#picker option")) == 3, what="the model picker")
    options = [o.text for o in driver.find_elements("css selector", "#picker option")]
    from lenetlab.inference.predictor import default_checkpoint
    from lenetlab.inference.run import Run

    shipped = Run(default_checkpoint().parent).test_accuracy()
    assert options[0].startswith(f"lenet5_mnist · lenet5 · mnist · test acc {100 * shipped:.2f}%"), options
    assert options[1].startswith("lenet5-1998 · lenet5-1998 · mnist-subset"), options
    canvas = driver.find_element("id", "pad")
    _stroke(driver, canvas, [(80, 70), (200, 70), (130, 225)])  # a '7'
    _wait(driver, lambda d: _answered(d, "lenet5_mnist") and _maps(d, "C3") == 16, what="the layers of lenet5")
    time.sleep(0.5)  # the request sent at the release
    _wait(driver, lambda d: _answered(d, "lenet5_mnist"), what="the last answer")
    assert driver.find_element("id", "digit").text == "7"
    assert _layer_names(driver) == ["C1 kernels", "C1", "S2", "C3", "S4", "C5", "F6", "output"]
    assert [_maps(driver, n) for n in ("C1 kernels", "C1", "S2", "C3", "S4")] == [6, 6, 6, 16, 16]
    for vector in ("C5", "F6", "output"):  # C5's 120 maps of 1x1 and the units of F6 and the output: bars
        assert len(driver.find_elements("css selector", f'.layer[data-name="{vector}"] canvas.vector-bars')) == 1
    sal = driver.find_element("id", "saliency")
    assert sal.is_displayed() and sal.get_attribute("data-state") == "shown"
    red = driver.execute_script(  # the overlay is drawn: some pixels are clearly red
        "const c = document.getElementById('saliency').getContext('2d').getImageData(0, 0, 28, 28).data;"
        "let n = 0; for (let i = 0; i < c.length; i += 4) if (c[i] > c[i + 1] + 80) n++; return n;"
    )
    assert red > 10
    from selenium.webdriver.common.action_chains import ActionChains

    c3 = driver.find_elements("css selector", '.layer[data-name="C3"] canvas.map')[5]
    ActionChains(driver).move_to_element(c3).perform()
    zoom = driver.find_element("id", "zoom")
    _wait(driver, lambda d: zoom.is_displayed(), what="the enlarged map")
    caption = driver.find_element("id", "zoom-caption").text
    assert caption.startswith("C3 map 5 · 10×10 · values "), caption
    images.artifacts.mkdir(exist_ok=True)
    driver.save_screenshot(str(images.artifacts / "explain_desktop.png"))
    ActionChains(driver).move_to_element(canvas).perform()

    lenet5_layers = _layer_names(driver)
    _pick(driver, "lenet5-1998")
    _wait(
        driver,
        lambda d: _answered(d, "lenet5-1998") and "RBF distances" in _layer_names(d),
        what="the layers of lenet5-1998",
    )
    assert _layer_names(driver) == lenet5_layers + ["RBF distances"]
    assert "ScaledTanh" in driver.find_element("css selector", '.layer[data-name="C1"] .layer-detail').text
    driver.save_screenshot(str(images.artifacts / "explain_lenet1998.png"))
    _pick(driver, "nin-small")
    _wait(driver, lambda d: _answered(d, "nin-small") and "net.0" in _layer_names(d), what="the layers of nin-small")
    names = _layer_names(driver)
    assert names[0] == "net.0.0 kernels" and names[1:] == [
        "net.0",
        "net.1",
        "net.2",
        "net.3",
        "net.4",
        "net.5",
        "net.7",
        "net.8",
    ]
    assert _maps(driver, "net.0") == 32 and _maps(driver, "net.0.0 kernels") == 32

    # the API docs: rendered by the server, nothing fetched from elsewhere
    driver.get(three_models + "/docs")
    assert "POST /explain" in driver.find_element("tag name", "body").text
    external = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin))"
    )
    assert external == []

    # a phone: 375 CSS pixels wide, touch input
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 2300, "deviceScaleFactor": 1, "mobile": True}
    )
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    try:
        driver.get(three_models + "/")
        _wait(driver, lambda d: len(d.find_elements("css selector", "#picker option")) == 3, what="the model picker")
        assert driver.execute_script("return window.innerWidth") == 375
        canvas = driver.find_element("id", "pad")
        assert canvas.rect["width"] <= 375 - 20
        _touch_stroke(driver, canvas, [(140, 50), (140, 235)])  # a '1', with a finger
        _wait(driver, lambda d: _answered(d, "lenet5_mnist") and _maps(d, "C3") == 16, what="the digit 1 by touch")
        assert driver.find_element("id", "digit").text == "1"
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
        driver.find_elements("css selector", '.layer[data-name="C1"] canvas.map')[2].click()  # tap: enlarge
        _wait(driver, lambda d: d.find_element("id", "zoom").is_displayed(), what="the tapped map enlarged")
        driver.save_screenshot(str(images.artifacts / "explain_phone.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})


def _touch_stroke(drv, canvas, points):
    """A finger pressed at points[0], moved through the rest, lifted (offsets from the canvas's top left,
    in the 280-pixel drawing's units)."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    rect = canvas.rect
    scale = rect["width"] / 280
    finger = PointerInput(interaction.POINTER_TOUCH, "finger")
    actions = ActionBuilder(drv, mouse=finger, duration=10)
    x0, y0 = points[0]
    actions.pointer_action.move_to_location(int(rect["x"] + x0 * scale), int(rect["y"] + y0 * scale)).pointer_down()
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        steps = max(1, int(max(abs(xb - xa), abs(yb - ya)) // 10))
        for i in range(1, steps + 1):
            t = i / steps
            actions.pointer_action.move_to_location(
                int(rect["x"] + (xa + t * (xb - xa)) * scale), int(rect["y"] + (ya + t * (yb - ya)) * scale)
            )
    actions.pointer_action.pointer_up()
    actions.perform()
