"""The sellers' page in headless Chromium (Debian's chromium + chromium-driver) against uvicorn:
fill the form, pick a photo, read the suggested price, its range and the contributions chart; and
see an error named on the page."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.service_testkit import LiveServer, image_bytes, install_version, make_settings, with_blocks

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def live_server(exported, tmp_path_factory: pytest.TempPathFactory):
    """uvicorn over version 1 whose card has a calibrated range and a neutral baseline."""
    model_dir = tmp_path_factory.mktemp("page") / "price"
    install_version(exported["v1"], model_dir, 1, edit=with_blocks())
    with LiveServer(make_settings(model_dir)) as server:
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver (make browser-deps)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1000,1100",
        "--lang=en-US",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def fill(driver, fields: dict[str, str], photo: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    for name, value in fields.items():
        element = driver.find_element(By.ID, f"field-{name}")
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    driver.find_element(By.ID, "field-image").send_keys(str(photo))
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script(
            "const p = document.getElementById('preview-image');return !p.hidden && p.complete && p.naturalWidth > 0;"
        ),
        "the photo preview did not show",
    )


FIELDS = {
    "brand": "nike",
    "category": "shoes",
    "condition": "new",
    "size": "L",
    "colour": "red",
    "age_months": "6",
    "title": "Red running shoes",
    "description": "Worn once, like new, original box.",
}


def test_page_suggests_the_same_price_as_the_api(browser, live_server, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "shoes.jpg"
    photo.write_bytes(image_bytes("JPEG", size=(80, 60), seed=21))
    browser.get(live_server.url + "/")
    assert browser.title == "Price suggestion"
    fill(browser, FIELDS, photo)
    browser.find_element(By.ID, "submit").click()
    price = WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "price").get_attribute("data-price"),
        "no price appeared on the page",
    )
    shown = browser.find_element(By.ID, "price").text
    browser.save_screenshot(str(tmp_path / "page.png"))

    expected = httpx.post(
        live_server.url + "/v1/predict/upload",
        data=FIELDS,
        files={"image": ("shoes.jpg", photo.read_bytes(), "image/jpeg")},
        timeout=30,
    ).json()
    assert float(price) == expected["price"]
    assert shown == f"€{expected['price']:,.2f}"
    assert browser.find_element(By.ID, "status").text == "Suggested price:"
    assert browser.find_element(By.ID, "error").is_displayed() is False

    low, high = (browser.find_element(By.ID, f"range-{end}") for end in ("low", "high"))
    assert float(low.get_attribute("data-value")) == expected["range"]["low"]
    assert float(high.get_attribute("data-value")) == expected["range"]["high"]
    assert low.text == f"€{expected['range']['low']:,.2f}" and high.text == f"€{expected['range']['high']:,.2f}"
    assert browser.find_element(By.ID, "range").is_displayed()
    assert browser.find_element(By.ID, "range-level").text == "80%"
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    assert [b.get_attribute("data-modality") for b in bars] == list(expected["contributions"])
    assert [b.text.split("\n")[0] for b in bars] == ["Item details", "Text", "Photo"]
    for row in bars:
        part = expected["contributions"][row.get_attribute("data-modality")]
        assert float(row.get_attribute("data-amount")) == part["amount"]
        bar = row.find_element(By.CSS_SELECTOR, ".bar")
        track = row.find_element(By.CSS_SELECTOR, ".bar-track")
        assert bar.size["width"] == pytest.approx(track.size["width"] * part["share"] / 2, abs=2)
        assert ("up" if part["amount"] >= 0 else "down") in bar.get_attribute("class")


def test_page_shows_the_error_naming_the_field(browser, live_server, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "shoes.png"
    photo.write_bytes(image_bytes("PNG", seed=22))
    browser.get(live_server.url + "/")
    fill(browser, {**FIELDS, "age_months": "1000"}, photo)
    browser.find_element(By.ID, "submit").click()
    error = WebDriverWait(browser, 30).until(
        lambda d: (e := d.find_element(By.ID, "error")).is_displayed() and e.text,
        "no error appeared on the page",
    )
    assert error == "age_months: is out of range: accepted 0 to 240 (seen in training: 0 to 120)"
    assert browser.find_element(By.ID, "price").is_displayed() is False
