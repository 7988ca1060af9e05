"""The web page in a real headless browser (Debian's chromium through selenium and chromium-driver): pick a
photo, get the colorized image back at the photo's size, ready to download; with a model that takes colour
hints, place, recolour, drag, delete, download and load hint points.

scripts/install_test_browser.sh installs the browser; without it this test skips, except under CI=true,
where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.robustness.conftest import photo
from tests.serve.conftest import TOKEN, Server
from tests.serve.test_api_hints import BLUE, RED, moved_toward

# Chromium as root on a machine without network or display: no sandbox, GPU, QUIC or calls home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
)
WAIT_S = 60


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver; skip (fail under CI=true) when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "no chromium and chromedriver on PATH; run scripts/install_test_browser.sh (Debian's chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    chromium, driver_path = find_browser()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium_profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))  # no Selenium Manager
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_colorizes_a_picked_photo_at_its_size(browser, open_server: Server, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    gray = tmp_path / "grandma.jpg"
    photo((360, 240), seed=21).convert("L").save(gray, quality=92)
    browser.get(f"{open_server.url}/")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: "resnet18" in d.find_element(By.ID, "model").text, "the page never showed the model")
    browser.find_element(By.ID, "file").send_keys(str(gray))
    state = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")  # noqa: E731
    wait.until(lambda d: state(d) in ("done", "error"), "the page never finished colorizing")
    status = browser.find_element(By.ID, "status").text
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", status
    assert "360×240" in status
    assert not browser.find_element(By.ID, "hint-tools").is_displayed()  # this model takes no hints

    after = browser.find_element(By.ID, "after")
    assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", after) == [360, 240]
    download = browser.find_element(By.ID, "download")
    assert download.get_attribute("download") == "grandma_color.png"
    assert download.get_attribute("href") == after.get_attribute("src")
    colorized = Image.open(io.BytesIO(read_blob(browser, after.get_attribute("src"))))
    assert (colorized.format, colorized.size) == ("PNG", (360, 240))
    rgb = np.asarray(colorized.convert("RGB"), dtype=np.int16)
    assert np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).mean() > 0.5  # the gray photo has colour now
    screenshot = os.environ.get("PIX2COLOR_SCREENSHOT")  # a picture of the page for people to look at
    if screenshot:
        browser.save_screenshot(screenshot)


def test_hint_points_on_the_page_color_the_photo_where_they_lie(browser, token_server: Server, tmp_path: Path) -> None:
    """Two points clicked on a photo shown smaller than its size, recoloured, dragged, deleted, saved and loaded."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from pix2color.hint_points import parse_hints

    gray = tmp_path / "street.png"
    photo((240, 720), seed=22).convert("L").save(gray)  # shown smaller (at most 75% of the window's height)
    page = Page(browser)
    browser.get(f"{token_server.url}/")
    page.wait.until(lambda d: d.find_element(By.ID, "token-field").is_displayed(), "the page never asked for a token")
    browser.find_element(By.ID, "token").send_keys(TOKEN, Keys.TAB)
    page.wait.until(lambda d: d.find_element(By.ID, "hint-tools").is_displayed(), "the page showed no hint tools")
    browser.find_element(By.ID, "file").send_keys(str(gray))
    automatic = page.result()

    points = [(60, 150), (170, 560)]
    for (x, y), color in zip(points, (RED, BLUE), strict=True):
        page.click_photo(x, y, (240, 720))
        swatch = browser.find_elements(By.CSS_SELECTOR, "#hint-list input[type=color]")[-1]
        placed = page.saved_hints()[-1]
        assert abs(placed["x"] - x) <= 1 and abs(placed["y"] - y) <= 1, placed  # the photo's pixels, not the display's
        left, top = placed["x"] - 3, placed["y"] - 3  # its 8 x 8 square
        shown = np.asarray(automatic.convert("RGB"))[top : top + 8, left : left + 8].reshape(-1, 3).mean(axis=0)
        assert np.abs(hex_rgb(swatch.get_attribute("value")) - shown).max() <= 1  # starts as the colour there
        script = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))"
        browser.execute_script(script, swatch, color)  # what picking a colour does
    hinted = page.result("2 hints")
    assert moved_toward(hinted, automatic, *points[0], RED) and moved_toward(hinted, automatic, *points[1], BLUE)
    saved = page.saved_hints()
    assert [(hint["color"], hint["size"]) for hint in saved] == [(RED, 8), (BLUE, 8)]

    width = page.shown_size()[0]
    ActionChains(browser).drag_and_drop_by_offset(
        browser.find_element(By.CSS_SELECTOR, "#marks .mark"), 75, 0
    ).perform()
    dragged = page.result("2 hints")
    moved = page.saved_hints()
    assert abs(moved[0]["x"] - saved[0]["x"] - 75 * 240 / width) <= 2 and moved[0]["y"] == saved[0]["y"]
    assert moved[1] == saved[1]
    assert moved_toward(dragged, automatic, moved[0]["x"], moved[0]["y"], RED)

    browser.find_element(By.CSS_SELECTOR, "#hint-list .delete").click()  # the first from the list
    browser.find_element(By.CSS_SELECTOR, "#marks .mark").send_keys(Keys.DELETE)  # the second on the photo
    assert np.array_equal(np.asarray(page.result("(render size 64).")), np.asarray(automatic))  # automatic again

    blue_lab = [-5.0, -60.0]  # as pix2color-infer --hints reads a folder's file: this photo's list by its name
    hints_file = tmp_path / "street_hints.json"
    hints_file.write_text(json.dumps({"street.png": [moved[0], {"x": 170, "y": 560, "lab": blue_lab}]}))
    browser.find_element(By.ID, "load-hints").send_keys(str(hints_file))
    loaded = page.result("2 hints")
    assert moved_toward(loaded, automatic, moved[0]["x"], moved[0]["y"], RED)
    expected_blue = np.array(parse_hints([{"x": 0, "y": 0, "lab": blue_lab}], "")[0].rgb) * 255
    assert np.abs(hex_rgb(page.saved_hints()[1]["color"]) - expected_blue).max() <= 1
    screenshot = os.environ.get("PIX2COLOR_SCREENSHOT")
    if screenshot:
        browser.save_screenshot(screenshot.replace(".png", "_hints.png"))


class Page:
    """The page in the browser: its newest colorized result, its saved hints, clicks on the photo."""

    def __init__(self, browser):
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = browser
        self.wait = WebDriverWait(browser, WAIT_S)
        self.src = None  # the blob: URL of the newest result read

    def result(self, status: str = "") -> Image.Image:
        """The next colorized image the page shows, once its status line holds ``status``."""
        src = self.wait.until(lambda d: self._new_result(status), f"the page never showed a new result, {status!r}")
        self.src = src
        image = Image.open(io.BytesIO(read_blob(self.browser, src)))
        image.load()
        return image

    def _new_result(self, status: str) -> str | None:
        from selenium.webdriver.common.by import By

        state = self.browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")
        line = self.browser.find_element(By.ID, "status").text
        assert state != "error", line
        src = self.browser.find_element(By.ID, "after").get_attribute("src")
        return src if state == "done" and status in line and src.startswith("blob:") and src != self.src else None

    def saved_hints(self) -> list[dict]:
        """The hints that the page's "Download hints" link holds."""
        from selenium.webdriver.common.by import By

        return json.loads(read_blob(self.browser, self.browser.find_element(By.ID, "save-hints").get_attribute("href")))

    def shown_size(self) -> tuple[float, float]:
        """The width and height at which the page shows the photo, in CSS pixels."""
        from selenium.webdriver.common.by import By

        script = "const box = arguments[0].getBoundingClientRect(); return [box.width, box.height]"
        return tuple(self.browser.execute_script(script, self.browser.find_element(By.ID, "after")))

    def click_photo(self, x: int, y: int, size: tuple[int, int]) -> None:
        """Click where the photo's pixel (x, y) is shown, the photo being ``size`` pixels, shown at any size."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        marks = self.browser.find_element(By.ID, "marks")
        self.browser.execute_script("arguments[0].scrollIntoView()", marks)
        box = self.browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", marks
        )
        dx, dy = ((p + 0.5) * shown / side - shown / 2 for p, shown, side in zip((x, y), box, size, strict=True))
        ActionChains(self.browser).move_to_element_with_offset(marks, round(dx), round(dy)).click().perform()


def hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def read_blob(browser, url: str) -> bytes:
    """The bytes behind a blob: URL of the page, read in the page and handed over as base64."""
    script = """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then((r) => r.blob()).then((blob) => {
            const reader = new FileReader();
            reader.onload = () => done(reader.result.split(",")[1]);
            reader.readAsDataURL(blob);
        });
    """
    return base64.b64decode(browser.execute_async_script(script, url))
