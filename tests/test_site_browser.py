"""The catalog in a real browser: Debian's headless Chromium driven through chromedriver.

Runs in the torch environment (``make test-torch`` installs the browser first when it is
missing). Where the browser or selenium is missing, the tests fail under CI (``CI=true``) or
``HUBCORE_TEST_BROWSER=1`` and are skipped elsewhere. ``HUBCORE_SCREENSHOTS=DIR`` writes the
screenshots of the index and a detail page, at desktop and phone widths, into DIR.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from hubcore.site import SiteBuilder
from hubcore.site.serve import SiteServer

from .site_fixtures import all_collectors, site_inputs

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing() -> str:
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install chromium chromium-driver; make browser)"
    return ""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    config, extra = site_inputs(tmp_path_factory.mktemp("catalog"))
    builder = SiteBuilder(config, collectors=all_collectors(config, extra))  # type: ignore[arg-type]
    builder.build()
    with SiteServer(builder, 0) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def chromium() -> Iterator[Any]:
    """A headless Chromium driver (skipped, or failed under CI, when it cannot start); for
    module-scoped ``browser`` fixtures."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the browser tests run in the torch environment (make test-torch)")
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true" or os.environ.get("HUBCORE_TEST_BROWSER"):
            pytest.fail(f"the browser tests must run here, but {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    driver.execute_script("return document.readyState")


def _visible_cards(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        c.get_attribute("data-slug")
        for c in driver.find_elements(By.CSS_SELECTOR, ".card")
        if c.is_displayed()
    ]


def _errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_index_shows_every_model_and_filters(browser: Any, served: SiteServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    _open(browser, served.url)
    every = _visible_cards(browser)
    assert len(every) == 9
    # a tag filter, used from the keyboard: focus the button and press space
    vision = browser.find_element(By.CSS_SELECTOR, '.tag-filter[data-tag="nlp"]')
    vision.send_keys(Keys.SPACE)
    assert vision.get_attribute("aria-pressed") == "true"
    assert _visible_cards(browser) == ["acme_hub_tokenizer"]
    assert browser.find_element(By.ID, "count").text == "1 model"
    vision.send_keys(Keys.SPACE)
    assert len(_visible_cards(browser)) == 9
    Select(browser.find_element(By.ID, "framework")).select_by_value("MegEngine")
    assert _visible_cards(browser) == ["examples-hub-mge_tinynet"]
    Select(browser.find_element(By.ID, "framework")).select_by_value("")
    search = browser.find_element(By.ID, "search")
    search.send_keys("분류")  # Korean text of a page's summary
    assert _visible_cards(browser) == ["acme_hub_tinynet"]
    search.clear()
    search.send_keys("staging")  # an alias of the registered model
    assert _visible_cards(browser) == ["image-classifier"]
    search.send_keys(" nothing-matches")
    assert _visible_cards(browser) == []
    assert browser.find_element(By.ID, "empty").is_displayed()
    assert _errors(browser) == []


def test_detail_page_shows_snippet_table_and_lineage(browser: Any, served: SiteServer) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, served.url + "models/examples-hub-tinynet.html")
    snippet = browser.find_element(By.CSS_SELECTOR, "pre.snippet")
    assert "hubcore.load(" in snippet.text
    assert snippet.is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "pre.snippet button.copy").is_displayed()
    table = browser.find_element(By.CSS_SELECTOR, "table.entrypoints")
    assert "tinynet(num_classes: int=10)" in table.text
    assert "755edc7016a0" in table.text
    _open(browser, served.url + "models/image-classifier.html")
    svg = browser.find_element(By.CSS_SELECTOR, "svg.lineage")
    assert svg.is_displayed()
    assert svg.size["width"] > 300
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.lineage .lineage-node")) == 5
    assert "production" in browser.find_element(By.CSS_SELECTOR, "table.versions").text
    assert _errors(browser) == []


def test_every_page_no_broken_links_no_errors_no_outside_requests(
    browser: Any, served: SiteServer
) -> None:
    import urllib.request

    from selenium.webdriver.common.by import By

    site = urlsplit(served.url)
    browser.get_log("performance")  # start from an empty log
    pages, seen, broken = [served.url], set(), []
    while pages:
        url = pages.pop()
        if url in seen:
            continue
        seen.add(url)
        _open(browser, url)
        assert _errors(browser) == [], url
        for element in browser.find_elements(
            By.CSS_SELECTOR, "a[href], img[src], link[href], script[src]"
        ):
            target = element.get_attribute("href") or element.get_attribute("src")
            absolute = urljoin(url, target).split("#")[0]
            if urlsplit(absolute).netloc != site.netloc:
                continue  # an outside link is followed by the reader, never loaded by the page
            try:
                with urllib.request.urlopen(absolute) as response:
                    ok = response.status == 200
            except OSError:
                ok = False
            if not ok:
                broken.append(f"{url} -> {target}")
            if absolute.endswith(".html") and absolute not in seen:
                pages.append(absolute)
    assert broken == []
    assert len(seen) >= 10  # the index and the nine model pages
    requested = _requests(browser)
    assert any(urlsplit(u).netloc == site.netloc for u in requested)  # the log is recorded
    outside = [
        u
        for u in requested
        if urlsplit(u).scheme not in ("data", "blob", "about", "chrome")
        and urlsplit(u).netloc != site.netloc
    ]
    assert outside == []


def test_screenshots(browser: Any, served: SiteServer) -> None:
    """Index and a detail page at desktop and phone widths; no horizontal scrolling on a
    phone. Written to $HUBCORE_SCREENSHOTS when set (the README shows them)."""
    target = os.environ.get("HUBCORE_SCREENSHOTS")
    shots = {
        "catalog-index": served.url,
        "catalog-model": served.url + "models/image-classifier.html",
    }
    for width, height, suffix in ((1280, 900, "desktop"), (390, 844, "phone")):
        browser.set_window_size(width, height)
        for name, url in shots.items():
            _open(browser, url)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways at {width}px"
            png = browser.get_screenshot_as_png()
            assert png.startswith(b"\x89PNG")
            if target:
                Path(target).mkdir(parents=True, exist_ok=True)
                (Path(target) / f"{name}-{suffix}.png").write_bytes(png)
    browser.set_window_size(1280, 900)
