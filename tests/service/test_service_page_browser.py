"""The sellers' page in headless Chromium (Debian's chromium + chromium-driver) against uvicorn:
fill the form, pick a photo, read the suggested price, its range and the contributions chart; see
an error named on the page; and the similar listings (comparables) with their thumbnails, fetched
with the API key, from the tiny model the pipeline trains (and none from a card without an index)."""

from __future__ import annotations

import base64
import itertools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service_testkit import LiveServer, image_bytes, install_version, make_settings, with_blocks

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KEY = "page-test-key"


@pytest.fixture(scope="module")
def live_server(exported, tmp_path_factory: pytest.TempPathFactory):
    """uvicorn over version 1 whose card has a calibrated range and a neutral baseline."""
    model_dir = tmp_path_factory.mktemp("page") / "price"
    install_version(exported["v1"], model_dir, 1, edit=with_blocks())
    with LiveServer(make_settings(model_dir)) as server:
        yield server


@pytest.fixture(scope="module")
def trained_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """uvicorn with an API key over version 1 of the tiny model the pipeline trains, exported
    with its comparables index (thumbnails, fields of training/configs/synthetic.toml)."""
    model_dir = tmp_path_factory.mktemp("page-trained") / "price"
    install_version(tiny_model_dir / "1", model_dir, 1)
    with LiveServer(make_settings(model_dir, api_key=KEY)) as server:
        yield server


def with_subset_ranges(folder: Path) -> None:
    """An ``install_version`` edit: each subset of the input groups gets its own range, narrower the
    more groups it has (the tiny model's valid split is too small for any: they all fall back to
    the overall range, so adding a group would never narrow it)."""
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text())
    interval = card["interval"]
    groups = list(card["missing"]["groups"])
    by_inputs = {}
    for size in range(1, len(groups) + 1):
        for subset in itertools.combinations(groups, size):
            scale = {1: 1.0, 2: 0.7}.get(size, 0.5)
            quantiles = {level: [low * scale, high * scale] for level, (low, high) in interval["quantiles"].items()}
            by_inputs["+".join(subset)] = {"n": 100, "quantiles": quantiles, "too_few_rows_for": []}
    interval["by_inputs"] = by_inputs
    card_path.write_text(json.dumps(card))


@pytest.fixture(scope="module")
def subsets_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """uvicorn with an API key over the tiny trained model, each input subset with its own range."""
    model_dir = tmp_path_factory.mktemp("page-subsets") / "price"
    install_version(tiny_model_dir / "1", model_dir, 1, edit=with_subset_ranges)
    with LiveServer(make_settings(model_dir, api_key=KEY)) as server:
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


def card_read(driver) -> str:
    """Wait until the page has asked GET /v1/model (or failed to); returns how it set the form up:
    ``optional`` (a card with a `missing` block), ``required`` (an older card) or ``unavailable``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 15).until(
        lambda d: (
            (state := d.execute_script("return document.body.dataset.card || '';")) not in ("", "loading") and state
        ),
        "the page did not read the model card",
    )


def set_fields(driver, fields: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name, value in fields.items():
        element = driver.find_element(By.ID, f"field-{name}")
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def previews_shown(driver, count: int) -> bool:
    """The photo list shows ``count`` previews, each loaded."""
    return driver.execute_script(
        "const imgs = [...document.querySelectorAll('#photos-image .photo-item img')];"
        "return imgs.length === arguments[0] && imgs.every((i) => i.complete && i.naturalWidth > 0);",
        count,
    )


def add_photos(driver, *photos: Path) -> None:
    """Choose ``photos`` in the picker (several at once when it takes several) and wait for
    their previews."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    before = len(driver.find_elements(By.CSS_SELECTOR, "#photos-image .photo-item"))
    driver.find_element(By.ID, "field-image").send_keys("\n".join(str(p) for p in photos))
    WebDriverWait(driver, 15).until(
        lambda d: previews_shown(d, before + len(photos)), "the photo previews did not show"
    )


def fill(driver, fields: dict[str, str], photo: Path) -> None:
    card_read(driver)
    set_fields(driver, fields)
    add_photos(driver, photo)


def settled(driver, timeout: float = 30) -> str:
    """Wait until the page shows the answer to the form as it is now (no update pending or on its
    way); returns ``done`` or ``error``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        lambda d: (
            (state := d.execute_script("return document.getElementById('result').dataset.state;")) in ("done", "error")
            and state
        ),
        "the page did not settle on an answer",
    )


def upload_requests(driver) -> int:
    """How many POST /v1/predict/upload the page has had answered."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/predict/upload')).length;"
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


# Values the tiny trained model knows (its vocabulary comes from the generated tiny data set).
TRAINED_FIELDS = {
    "brand": "zara",
    "category": "dress",
    "condition": "like_new",
    "size": "M",
    "colour": "red",
    "age_months": "6",
    "title": "Red summer dress",
    "description": "Worn once, like new.",
}


def enter_key(driver) -> None:
    """Type the API key (replacing the one the page kept from an earlier test) and wait until the
    card has been read with it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    key = driver.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys(KEY)
    WebDriverWait(driver, 15).until(
        lambda d: card_read(d) != "unavailable" and d.execute_script("return !!document.body.dataset.card;"),
        "the card was not read with the key",
    )


def upload(server, photo: Path) -> dict:
    """What the API itself answers for FIELDS and ``photo`` (the page must show the same)."""
    return httpx.post(
        server.url + "/v1/predict/upload",
        data=FIELDS,
        files={"image": ("shoes.jpg", photo.read_bytes(), "image/jpeg")},
        timeout=30,
    ).json()


def test_page_suggests_the_same_price_as_the_api(browser, live_server, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    photo = tmp_path / "shoes.jpg"
    photo.write_bytes(image_bytes("JPEG", size=(80, 60), seed=21))
    browser.get(live_server.url + "/")
    assert browser.title == "Price suggestion"
    fill(browser, FIELDS, photo)
    price = submit_and_wait(browser)
    shown = browser.find_element(By.ID, "price").text
    browser.save_screenshot(str(tmp_path / "page.png"))

    expected = upload(live_server, photo)
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


def test_page_over_an_older_card_waits_for_every_field_and_the_photo(browser, live_server, tmp_path) -> None:
    """A card without `missing` or `max_photos`: the example values stay and every field is
    required, nothing is sent until the photo is there; then the price follows the form with no
    click, one photo at a time (a new one replaces it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live_server.url + "/")
    assert card_read(browser) == "required"
    assert browser.find_element(By.ID, "field-title").get_attribute("value") == "A nice item"
    assert browser.find_element(By.ID, "field-age_months").get_attribute("required") == "true"
    assert browser.find_elements(By.CSS_SELECTOR, "#field-brand option[value='']") == []
    assert browser.find_element(By.ID, "status").text == "Add a photo for a suggestion."
    set_fields(browser, FIELDS)
    browser.find_element(By.ID, "field-age_months").clear()
    assert browser.find_element(By.ID, "status").text == "Fill in age months and add a photo for a suggestion."
    browser.find_element(By.ID, "field-age_months").send_keys(FIELDS["age_months"])
    assert browser.find_element(By.ID, "add-image").text == "Add a photo"
    assert upload_requests(browser) == 0

    photo, other = tmp_path / "shoes.jpg", tmp_path / "other.png"
    photo.write_bytes(image_bytes("JPEG", size=(80, 60), seed=26))
    other.write_bytes(image_bytes("PNG", size=(60, 80), seed=27))
    add_photos(browser, other)
    assert settled(browser) == "done"
    browser.find_element(By.ID, "field-image").send_keys(str(photo))  # replaces the first: one photo at most
    WebDriverWait(browser, 15).until(
        lambda d: (
            previews_shown(d, 1)
            and d.find_element(By.CSS_SELECTOR, "#photos-image .photo-item").get_attribute("data-file") == "shoes.jpg"
        ),
        "the second photo did not replace the first",
    )
    assert browser.find_element(By.ID, "add-image").text == "Change the photo"
    assert settled(browser) == "done"
    expected = upload(live_server, photo)
    assert browser.find_element(By.ID, "price").text == f"€{expected['price']:,.2f}"
    assert browser.find_element(By.ID, "missing").is_displayed() is False
    assert browser.find_element(By.ID, "narrow").is_displayed() is False

    # the photo removed: the answer goes, nothing is sent
    answered = upload_requests(browser)
    browser.find_element(By.CSS_SELECTOR, "#photos-image .remove-photo").click()
    assert browser.find_element(By.ID, "status").text == "Add a photo for a suggestion."
    assert browser.find_element(By.ID, "price").is_displayed() is False
    browser.execute_script("return new Promise((resolve) => setTimeout(resolve, 600));")
    assert upload_requests(browser) == answered


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


def submit_and_wait(driver) -> str:
    """Click "Suggest a price" and wait for the answer's price; returns its data-price."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "submit").click()
    assert settled(driver) == "done", driver.find_element(By.ID, "error").text
    price = driver.find_element(By.ID, "price")
    assert price.is_displayed()
    return price.get_attribute("data-price")


def shown_rows(driver) -> list[dict[str, Any]]:
    """The "Similar listings" rows as the page shows them (the section must be displayed)."""
    return driver.execute_script(
        """
        return [...document.querySelectorAll('#comp-list > li.comp')].map((li) => {
          const img = li.querySelector('.comp-thumb img');
          return {
            id: li.dataset.id, price: li.dataset.price, similarity: li.dataset.similarity,
            title: li.querySelector('.comp-title').textContent,
            fields: [...li.querySelectorAll('.comp-fields span')].map((s) => [s.dataset.field, s.textContent]),
            priceText: li.querySelector('.comp-price').textContent,
            similarityText: li.querySelector('.comp-similarity').textContent,
            img: img && { src: img.src, alt: img.alt, complete: img.complete, width: img.naturalWidth,
                          shown: img.offsetWidth > 0 },
            elements: li.querySelectorAll('*').length,
          };
        });"""
    )


def thumbnails_settled(driver) -> bool:
    """Every row's thumbnail has loaded or failed (none is still being fetched)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#comp-list .comp-thumb')]"
        ".every((t) => t.dataset.thumbnail !== 'loading');"
    )


def test_page_shows_the_similar_listings_with_their_thumbnails(browser, trained_server, tmp_path) -> None:
    """The tiny trained model answers with comparables: the page lists them in the answer's order,
    each with its price in the answer's currency and its similarity, and the thumbnails really load
    (fetched with the API key, shown from a blob: URL the CSP allows); an error clears them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "item.jpg"
    photo.write_bytes(image_bytes("JPEG", size=(80, 60), seed=31))
    browser.get(trained_server.url + "/")
    enter_key(browser)
    fill(browser, TRAINED_FIELDS, photo)
    price = submit_and_wait(browser)
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "comparables").is_displayed(), "no similar listings appeared"
    )
    WebDriverWait(browser, 30).until(thumbnails_settled, "the thumbnails did not finish loading")
    browser.execute_script("document.getElementById('comparables').scrollIntoView();")
    browser.save_screenshot(str(tmp_path / "comparables.png"))

    sent = browser.execute_script(  # what the form holds (a card with a `missing` block: the fields given)
        "const optional = document.body.dataset.card === 'optional';"
        "return Object.fromEntries([...new FormData(document.getElementById('predict-form'))]"
        ".filter(([, v]) => typeof v === 'string' && (!optional || v.trim() !== '')));"
    )
    assert sent == TRAINED_FIELDS
    headers = {"Authorization": f"Bearer {KEY}"}
    expected = httpx.post(
        trained_server.url + "/v1/predict/upload",
        data=sent,
        files={"image": ("item.jpg", photo.read_bytes(), "image/jpeg")},
        headers=headers,
        timeout=30,
    ).json()
    assert float(price) == expected["price"]
    comparables = expected["comparables"]
    assert comparables, "the tiny model answered with no comparables"
    assert browser.find_element(By.CSS_SELECTOR, "#comparables h2").text == "Similar listings"

    rows = shown_rows(browser)
    assert [r["id"] for r in rows] == [str(c["id"]) for c in comparables]
    for row, comparable in zip(rows, comparables, strict=True):
        assert float(row["price"]) == comparable["price"]
        assert row["priceText"] == f"€{comparable['price']:,.2f}"
        percent = math.floor(comparable["similarity"] * 100 + 0.5)  # JavaScript's Math.round
        assert row["similarityText"] == (f"{percent}% similar" if percent >= 1 else "<1% similar")
        fields = {k: v for k, v in comparable.get("fields", {}).items() if v not in (None, "")}
        title = "title" if "title" in fields else next(iter(fields), None)
        if isinstance(fields.get(title), str):
            assert row["title"] == fields[title].strip()
        elif title is None:
            assert row["title"] == f"Listing {comparable['id']}"
        assert [name for name, _ in row["fields"]] == [k for k in fields if k != title]
        if comparable.get("thumbnail"):
            img = row["img"]
            assert img is not None and img["src"].startswith("blob:"), row
            assert img["complete"] and img["width"] > 0 and img["shown"], f"thumbnail of {row['id']} did not load"
            assert img["alt"] == f"Photo of {row['title']}"
        else:
            assert row["img"] is None
    with_thumbnails = [c for c in comparables if c.get("thumbnail")]
    assert with_thumbnails, "the tiny model's index has no thumbnails"

    # the thumbnail route wants the key: the page's images loaded because it sent it
    thumbnail = trained_server.url + "/" + with_thumbnails[0]["thumbnail"]
    assert httpx.get(thumbnail, timeout=30).status_code == 401
    answer = httpx.get(thumbnail, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"

    # an error clears the listings of the previous answer
    browser.find_element(By.ID, "field-age_months").clear()
    browser.find_element(By.ID, "field-age_months").send_keys("1000000")
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "error").is_displayed(), "no error appeared on the page"
    )
    assert browser.find_element(By.ID, "comparables").is_displayed() is False
    assert browser.find_elements(By.CSS_SELECTOR, "#comp-list > li") == []
    assert browser.find_element(By.ID, "price").is_displayed() is False


def test_page_without_an_index_shows_no_similar_listings(browser, live_server, tmp_path) -> None:
    """A card without a `comparables` block (an older export): the price, no "Similar listings"."""
    from selenium.webdriver.common.by import By

    photo = tmp_path / "shoes.jpg"
    photo.write_bytes(image_bytes("JPEG", size=(80, 60), seed=23))
    browser.get(live_server.url + "/")
    fill(browser, FIELDS, photo)
    price = submit_and_wait(browser)
    expected = upload(live_server, photo)
    assert "comparables" not in expected
    assert float(price) == expected["price"]
    assert browser.find_element(By.ID, "price").text == f"€{expected['price']:,.2f}"
    assert browser.find_element(By.ID, "comparables").is_displayed() is False
    assert browser.find_elements(By.CSS_SELECTOR, "#comp-list > li") == []
    assert "Similar listings" not in browser.find_element(By.ID, "result").text


# A stubbed answer (the page's fetch replaced in the browser), for what the trained model may not
# show: a title that looks like markup, no title field, no fields at all, no thumbnail, a
# thumbnail that fails, and an answer without comparables after one with them.
STUB_ANSWER: dict[str, Any] = {
    "price": 42.5,
    "currency": "EUR",
    "model_version": "1",
    "comparables": [
        {
            "id": "7",
            "price": 1234.5,
            "similarity": 0.934,
            "fields": {"brand": "<b>zara</b>", "title": '<img src=x onerror="window.pwned=1">', "age_months": 12.0},
            "thumbnail": "v1/comparables/7/thumbnail?version=1",
        },
        {"id": "8", "price": 30.0, "similarity": 0.5, "fields": {"brand": "nike", "size": None, "category": "shoes"}},
        {"id": "9", "price": 9.99, "similarity": 0.001, "thumbnail": "v1/comparables/9/thumbnail?version=1"},
    ],
}

STUB_FETCH = """
const [answer, jpeg] = arguments;
window.__answer = JSON.parse(answer);  // a string: webdriver would not keep the keys' order
window.__thumbnailFetches = [];
const bytes = Uint8Array.from(atob(jpeg), (c) => c.charCodeAt(0));
window.fetch = async (url, options) => {
  const path = String(url);
  if (path.startsWith('v1/predict/upload')) {  // every request gets the current answer
    return new Response(JSON.stringify(window.__answer), {headers: {'content-type': 'application/json'}});
  }
  window.__thumbnailFetches.push(path);
  if (path.includes('/comparables/7/')) return new Response(new Blob([bytes], {type: 'image/jpeg'}));
  return new Response('nope', {status: 404});
};
"""


def test_page_shows_stubbed_comparables_as_text(browser, live_server, tmp_path) -> None:
    """Every field is shown as text, never as markup; the title falls back to the first field,
    then the id; a missing or failed thumbnail leaves a grey box; a later answer without
    comparables clears the list."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "shoes.png"
    photo.write_bytes(image_bytes("PNG", seed=24))
    browser.get(live_server.url + "/")
    fill(browser, FIELDS, photo)
    jpeg = base64.b64encode(image_bytes("JPEG", size=(64, 48), seed=25)).decode()
    later = {**{k: v for k, v in STUB_ANSWER.items() if k != "comparables"}, "price": 43.5}
    browser.execute_script(STUB_FETCH, json.dumps(STUB_ANSWER), jpeg)
    assert submit_and_wait(browser) == "42.5"
    WebDriverWait(browser, 15).until(thumbnails_settled, "the stubbed thumbnails did not settle")
    browser.execute_script("document.getElementById('comparables').scrollIntoView();")
    browser.save_screenshot(str(tmp_path / "stubbed.png"))

    rows = shown_rows(browser)
    assert [r["id"] for r in rows] == ["7", "8", "9"]
    first, second, third = rows
    assert first["title"] == '<img src=x onerror="window.pwned=1">'
    assert first["fields"] == [["brand", "Brand: <b>zara</b>"], ["age_months", "Age months: 12"]]
    assert first["priceText"] == "€1,234.50" and first["similarityText"] == "93% similar"
    assert first["img"]["src"].startswith("blob:") and first["img"]["width"] == 64 and first["img"]["shown"]
    assert first["img"]["alt"] == 'Photo of <img src=x onerror="window.pwned=1">'
    assert second["title"] == "nike" and second["fields"] == [["category", "Category: shoes"]]
    assert second["img"] is None and second["similarityText"] == "50% similar"
    assert third["title"] == "Listing 9" and third["fields"] == [] and third["similarityText"] == "<1% similar"
    assert third["img"]["shown"] is False  # its thumbnail failed: the grey box stays
    # only the page's own elements: no markup from the data
    assert [r["elements"] for r in rows] == [10, 8, 7]
    assert browser.execute_script("return window.pwned === undefined;")
    assert browser.execute_script("return window.__thumbnailFetches;") == [
        f"{live_server.url}/v1/comparables/{i}/thumbnail?version=1" for i in (7, 9)
    ]

    browser.execute_script("window.__answer = JSON.parse(arguments[0]);", json.dumps(later))
    assert submit_and_wait(browser) == "43.5"
    assert browser.find_element(By.ID, "comparables").is_displayed() is False
    assert browser.find_elements(By.CSS_SELECTOR, "#comp-list > li") == []


# ------------------------------------------------------------------ incomplete listings (issue 17)

# The fake API of the tests below, installed before the page's own script runs (so that its GET
# /v1/model is answered too): the card is the served one with a `missing` block and `max_photos`;
# each POST /v1/predict/upload is recorded (its parts, files by name; whether it was aborted by the
# time it is answered) and gets `answers[i]` (the last one again past the end) after `delays[i]` ms.
STUB_API = """
(() => {
  const config = %s;
  const stub = window.__stub = { calls: [], answers: config.answers, delays: config.delays, alerts: [] };
  window.alert = (message) => stub.alerts.push(String(message));
  const realFetch = window.fetch.bind(window);
  const json = (body, status) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  window.fetch = async (url, options = {}) => {
    const path = new URL(String(url), location.href).pathname;
    if (path.endsWith("/v1/model")) return json(config.card, 200);
    if (!path.endsWith("/v1/predict/upload")) return realFetch(url, options);
    const index = stub.calls.length;
    const call = {
      parts: [...options.body.entries()].map(([k, v]) => [k, typeof v === "string" ? v : "file:" + v.name]),
      aborted: false,
    };
    stub.calls.push(call);
    const answer = stub.answers[Math.min(index, stub.answers.length - 1)];
    await new Promise((resolve) => setTimeout(resolve, stub.delays[index] || 0));
    call.aborted = Boolean(options.signal && options.signal.aborted);  // answered anyway: the page must drop it
    return json(answer.body, answer.status || 200);
  };
})();
"""

OPTIONAL_GROUPS = {
    "metadata": ["brand", "category", "condition", "size", "colour", "age_months"],
    "text": ["title", "description"],
    "image": ["image"],
}


def stub_answer(price: float, missing: list[str], narrow: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    given = {g for g, names in OPTIONAL_GROUPS.items() if not set(names) <= set(missing)}
    contributions = {
        g: ({"amount": 2.5, "share": 1 / len(given)} if g in given else "missing") for g in OPTIONAL_GROUPS
    }
    return {
        "body": {
            "price": price,
            "currency": "EUR",
            "model_version": "1",
            "range": {"low": round(price * 0.6, 2), "high": round(price * 1.5, 2), "level": 0.8},
            "missing": missing,
            "range_if_given": narrow,
            "contributions": contributions,
            **extra,
        }
    }


@pytest.fixture
def stubbed(browser, live_server):
    """``stubbed(answers, delays=(), max_photos=3)``: the page of ``live_server`` over the fake API
    above; returns the number of the requests it sent so far as a callable."""
    scripts: list[str] = []

    def open_page(answers: list[dict[str, Any]], delays: tuple[int, ...] = (), max_photos: int = 3):
        card = httpx.get(live_server.url + "/v1/model", timeout=30).json()
        for entry in card["inputs"]:
            if entry["role"] == "image":
                entry["max_photos"] = max_photos
        card["missing"] = {"method": "input dropout (test)", "groups": OPTIONAL_GROUPS}
        config = json.dumps({"card": card, "answers": answers, "delays": list(delays)})
        added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": STUB_API % config})
        scripts.append(added["identifier"])
        browser.get(live_server.url + "/")
        assert card_read(browser) == "optional"
        return lambda: browser.execute_script("return window.__stub.calls.length;")

    yield open_page
    for identifier in scripts:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": identifier})


def stub_calls(driver) -> list[dict[str, Any]]:
    return driver.execute_script("return window.__stub.calls;")


def wait_calls(driver, count: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return window.__stub.calls.length;") >= count, f"request {count} was not sent"
    )


def test_page_drops_an_answer_older_than_the_shown_one(browser, stubbed) -> None:
    """Typing sends one request per pause (debounced), with only the fields filled in; a newer
    request aborts the older one, and the older answer, arriving last, does not replace the newer."""
    from selenium.webdriver.common.by import By

    stubbed(
        [stub_answer(11.0, ["image"], []), stub_answer(22.0, ["image"], [])],
        delays=(1500, 0),  # the first answer comes back last
    )
    title = browser.find_element(By.ID, "field-title")
    title.send_keys("Red")
    wait_calls(browser, 1)
    title.send_keys(" shoes")
    assert settled(browser) == "done"
    assert browser.find_element(By.ID, "price").get_attribute("data-price") == "22"
    browser.execute_script("return new Promise((resolve) => setTimeout(resolve, 1800));")  # the late answer
    calls = stub_calls(browser)
    assert [c["parts"] for c in calls] == [[["title", "Red"]], [["title", "Red shoes"]]]
    assert calls[0]["aborted"] is True and calls[1]["aborted"] is False
    assert browser.find_element(By.ID, "price").get_attribute("data-price") == "22"
    assert browser.find_element(By.ID, "price").text == "€22.00"
    assert browser.execute_script("return document.getElementById('result').dataset.answers;") == "1"


def test_page_shows_what_is_missing_and_what_would_narrow_the_range(browser, stubbed, tmp_path) -> None:
    """The form starts empty (the examples as hints); the missing inputs, their "missing"
    contributions and the hint of `range_if_given[0]` are shown with the group's words; at most
    `max_photos` photos are taken, each can be removed; a 422 is shown next to the form, the bad
    photo marked, never as an alert."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    everything_but_title = [*OPTIONAL_GROUPS["metadata"], "description", "image"]
    narrow_details = {"group": "metadata", "inputs": OPTIONAL_GROUPS["metadata"], "low": 40.0, "high": 55.0}
    narrow_text = {"group": "text", "inputs": ["title", "description"], "low": 1234.5, "high": 2000.0}
    narrow_photo = {"group": "image", "inputs": ["image"], "low": 41.25, "high": 50.0}
    photo_error = {
        "detail": "image[1]: the file is not an image the service can read",
        "errors": [{"loc": ["image", 1], "msg": "the file is not an image the service can read", "type": "image"}],
    }
    count = stubbed(
        [
            stub_answer(47.0, everything_but_title, [narrow_details, narrow_photo]),
            stub_answer(1500.0, [*OPTIONAL_GROUPS["metadata"], "title", "description"], [narrow_text]),
            stub_answer(49.0, [*OPTIONAL_GROUPS["metadata"], "title", "description"], [narrow_text]),
            stub_answer(48.0, [], []),
            {"status": 422, "body": photo_error},
        ]
    )
    # nothing is filled in: no request, the examples are only hints
    values = browser.execute_script(
        "return [...document.getElementById('predict-form').elements]"
        ".filter((e) => e.name && e.type !== 'file').map((e) => [e.name, e.value, e.required]);"
    )
    assert values == [[name, "", False] for name in [*OPTIONAL_GROUPS["metadata"], "title", "description"]]
    assert browser.find_element(By.ID, "field-title").get_attribute("placeholder") == "e.g. A nice item"
    assert browser.find_element(By.ID, "status").text == "Fill in any field or add a photo for a suggestion."
    assert count() == 0

    browser.find_element(By.ID, "field-title").send_keys("Red running shoes")
    assert settled(browser) == "done"
    assert stub_calls(browser)[0]["parts"] == [["title", "Red running shoes"]]
    assert browser.find_element(By.ID, "price").text == "€47.00"
    assert browser.find_element(By.ID, "narrow").text == "Add the details: the range narrows to €40.00–€55.00."
    assert browser.find_element(By.ID, "missing").text == (
        "Priced without: brand, category, condition, size, colour, age months, description, photo."
    )
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    assert [b.text.split("\n") for b in bars] == [["Item details", "missing"], ["Text", "+€2.50"], ["Photo", "missing"]]
    assert [b.get_attribute("data-amount") for b in bars] == ["missing", "2.5", "missing"]

    # a title of spaces is no title: nothing is given, the answer goes, no request is sent
    browser.find_element(By.ID, "field-title").clear()
    browser.find_element(By.ID, "field-title").send_keys(" ")
    assert browser.find_element(By.ID, "status").text == "Fill in any field or add a photo for a suggestion."
    assert browser.find_element(By.ID, "price").is_displayed() is False

    # four photos chosen, three taken
    photos = []
    for i, fmt in enumerate(("PNG", "JPEG", "PNG", "JPEG")):
        photos.append(tmp_path / f"photo{i}.{fmt.lower()}")
        photos[-1].write_bytes(image_bytes(fmt, size=(40, 30), seed=40 + i))
    browser.find_element(By.ID, "field-image").send_keys("\n".join(str(p) for p in photos))
    assert settled(browser) == "done"
    assert previews_shown(browser, 3)
    assert browser.find_element(By.ID, "photo-count-image").text == "3 of 3 photos; 1 left out (at most 3)"
    assert browser.find_element(By.ID, "field-image").get_attribute("disabled") == "true"
    assert browser.find_element(By.ID, "price").text == "€1,500.00"
    assert browser.find_element(By.ID, "narrow").text == "Add a description: the range narrows to €1,234.50–€2,000.00."
    browser.save_screenshot(str(tmp_path / "photos.png"))

    # remove the second photo: room for another
    browser.find_element(By.CSS_SELECTOR, "#photos-image .photo-item[data-index='1'] .remove-photo").click()
    assert settled(browser) == "done"
    assert browser.find_element(By.ID, "price").text == "€49.00"
    assert browser.find_element(By.ID, "photo-count-image").text == "2 of 3 photos"
    assert browser.find_element(By.ID, "field-image").get_attribute("disabled") is None

    # a brand: nothing is missing any more, no hint
    Select(browser.find_element(By.ID, "field-brand")).select_by_value("nike")
    assert settled(browser) == "done"
    assert browser.find_element(By.ID, "price").text == "€48.00"
    assert browser.find_element(By.ID, "narrow").is_displayed() is False
    assert browser.find_element(By.ID, "missing").is_displayed() is False

    # a bad photo: the error under the form and on its preview, the price gone
    browser.find_element(By.ID, "submit").click()
    assert settled(browser) == "error"
    assert browser.find_element(By.ID, "error").text == photo_error["detail"]
    assert browser.find_element(By.CSS_SELECTOR, ".field-error[data-field='image']").text == (
        "Photo 2: the file is not an image the service can read"
    )
    items = browser.find_elements(By.CSS_SELECTOR, "#photos-image .photo-item")
    assert ["bad" in i.get_attribute("class") for i in items] == [False, True]
    browser.save_screenshot(str(tmp_path / "photo-error.png"))
    assert browser.find_element(By.ID, "price").is_displayed() is False
    assert browser.execute_script("return window.__stub.alerts;") == []
    parts = [c["parts"] for c in stub_calls(browser)]
    assert parts[1:] == [
        [["image", "file:photo0.png"], ["image", "file:photo1.jpeg"], ["image", "file:photo2.png"]],
        [["image", "file:photo0.png"], ["image", "file:photo2.png"]],
        [["brand", "nike"], ["image", "file:photo0.png"], ["image", "file:photo2.png"]],
        [["brand", "nike"], ["image", "file:photo0.png"], ["image", "file:photo2.png"]],
    ]


GROUP_HINTS = {"metadata": "the details", "text": "a description", "image": "a photo"}


def test_page_prices_an_incomplete_listing_as_it_is_filled_in(browser, subsets_server, tmp_path) -> None:
    """The tiny model the pipeline trains (its card has `missing` and `max_photos`; each input subset
    given its own range): a title alone
    is priced as it is typed, no photo, no click; the price changes as details are added, then
    again with two photos; each time it is the API's own answer for what was filled in, with its
    missing inputs, their "missing" contributions and the hint of `range_if_given[0]`."""
    from selenium.webdriver.common.by import By

    headers = {"Authorization": f"Bearer {KEY}"}
    card = httpx.get(subsets_server.url + "/v1/model", headers=headers, timeout=30).json()
    assert card.get("missing"), "the tiny model's card has no `missing` block"
    [image] = [entry for entry in card["inputs"] if entry["role"] == "image"]
    max_photos = image.get("max_photos") or 1
    assert max_photos >= 2, image
    names = [entry["name"] for entry in card["inputs"]]

    def api(fields: dict[str, str], *photos: Path) -> dict[str, Any]:
        parts = [(k, (None, v)) for k, v in fields.items()]  # multipart even without a photo
        parts += [("image", (p.name, p.read_bytes(), f"image/{p.suffix[1:]}")) for p in photos]
        answer = httpx.post(subsets_server.url + "/v1/predict/upload", files=parts, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def shown() -> dict[str, Any]:
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
        narrow = browser.find_element(By.ID, "narrow")
        missing = browser.find_element(By.ID, "missing")
        return {
            "price": float(browser.find_element(By.ID, "price").get_attribute("data-price")),
            "price_text": browser.find_element(By.ID, "price").text,
            "range": [
                float(browser.find_element(By.ID, f"range-{end}").get_attribute("data-value"))
                for end in ("low", "high")
            ],
            "bars": {b.get_attribute("data-modality"): b.get_attribute("data-amount") for b in bars},
            "bar_texts": {b.get_attribute("data-modality"): b.text.split("\n")[-1] for b in bars},
            "narrow": narrow.text if narrow.is_displayed() else None,
            "missing": missing.text if missing.is_displayed() else None,
        }

    def check(answer: dict[str, Any]) -> dict[str, Any]:
        assert settled(browser) == "done", browser.find_element(By.ID, "error").text
        page = shown()
        assert page["price"] == answer["price"] and page["price_text"] == f"€{answer['price']:,.2f}"
        assert page["range"] == [answer["range"]["low"], answer["range"]["high"]]
        for group, part in answer["contributions"].items():
            if part == "missing":
                assert page["bars"][group] == "missing" and page["bar_texts"][group] == "missing"
            else:
                assert float(page["bars"][group]) == part["amount"]
        assert set(page["bars"]) == set(answer["contributions"])
        labels = ["photo" if n == image["name"] else n.replace("_", " ") for n in answer["missing"]]
        assert page["missing"] == (f"Priced without: {', '.join(labels)}." if labels else None)
        first = (answer["range_if_given"] or [None])[0]
        if first and first["high"] - first["low"] < answer["range"]["high"] - answer["range"]["low"]:
            assert page["narrow"] == (
                f"Add {GROUP_HINTS[first['group']]}: the range narrows to €{first['low']:,.2f}–€{first['high']:,.2f}."
            )
        else:
            assert page["narrow"] is None
        return page

    browser.get(subsets_server.url + "/")
    enter_key(browser)
    assert card_read(browser) == "optional"
    assert browser.find_element(By.ID, "status").text == "Fill in any field or add a photo for a suggestion."
    assert browser.find_element(By.ID, "price").is_displayed() is False

    # a title alone, typed: one request once the typing pauses, the title's price
    browser.find_element(By.ID, "field-title").send_keys(TRAINED_FIELDS["title"])
    title_only = api({"title": TRAINED_FIELDS["title"]})
    assert title_only["missing"] == [n for n in names if n != "title"]
    assert title_only["contributions"]["image"] == "missing" and title_only["contributions"]["metadata"] == "missing"
    assert title_only["range_if_given"], "no hint to give: the answer has no range_if_given"
    first = check(title_only)
    assert upload_requests(browser) == 1
    assert (
        first["missing"] == "Priced without: brand, category, condition, size, colour, age months, description, photo."
    )
    assert first["narrow"].startswith("Add the details: ") or first["narrow"].startswith("Add a photo: ")
    browser.save_screenshot(str(tmp_path / "title-only.png"))

    # more details: another price
    details = {k: TRAINED_FIELDS[k] for k in ("brand", "category", "condition", "age_months")}
    set_fields(browser, details)
    with_details = api({**details, "title": TRAINED_FIELDS["title"]})
    second = check(with_details)
    assert second["price"] != first["price"]
    assert with_details["contributions"]["image"] == "missing"
    assert second["narrow"] == (
        f"Add a photo: the range narrows to €{with_details['range_if_given'][0]['low']:,.2f}"
        f"–€{with_details['range_if_given'][0]['high']:,.2f}."
    )

    # two photos: another price, nothing but the size, colour and description missing
    photos = [tmp_path / "front.png", tmp_path / "back.jpeg"]
    photos[0].write_bytes(image_bytes("PNG", size=(48, 40), seed=51))
    photos[1].write_bytes(image_bytes("JPEG", size=(40, 48), seed=52))
    add_photos(browser, *photos)
    with_photos = api({**details, "title": TRAINED_FIELDS["title"]}, *photos)
    third = check(with_photos)
    assert third["price"] != second["price"]
    assert with_photos["missing"] == ["size", "colour", "description"]
    assert third["missing"] == "Priced without: size, colour, description."
    assert third["narrow"] is None and with_photos["range_if_given"] == []
    assert isinstance(with_photos["contributions"]["image"], dict)
    assert browser.find_element(By.ID, "photo-count-image").text == f"2 of {max_photos} photos"
    browser.save_screenshot(str(tmp_path / "two-photos.png"))

    # the first photo removed: the price of the listing with the second one
    browser.find_element(By.CSS_SELECTOR, "#photos-image .photo-item[data-index='0'] .remove-photo").click()
    check(api({**details, "title": TRAINED_FIELDS["title"]}, photos[1]))
