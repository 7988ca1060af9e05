"""The web page in a real headless browser (Debian's chromium through selenium and chromium-driver): pick a
photo, get the colorized image back at the photo's size, ready to download.

scripts/install_test_browser.sh installs the browser; without it this test skips, except under CI=true,
where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.robustness.conftest import photo
from tests.serve.conftest import Server

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
