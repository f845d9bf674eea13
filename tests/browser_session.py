"""What the browser tests (tests/ui) share: headless Chromium (Debian's package, driven through its
ChromeDriver) and logging in through Airflow's login page, as a person does. A plugin of tests/conftest.py, not
a conftest of its own: two conftest modules would shadow each other's names when both folders run together."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
MISSING = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the browser tests: {MISSING}", pytrace=False)
        pytest.skip(MISSING)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(condition)


@pytest.fixture
def log_in(browser):
    """log_in(url, username, password): through the login page Airflow's UI sends a stranger to; returns
    the session's API token (the `_token` cookie the UI itself uses)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def log_in(url: str, username: str, password: str) -> str:
        browser.get(f"{url}/")
        user_box = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "input[type=text], input[name=username]"))
        user_box.send_keys(username)
        browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password + Keys.ENTER)
        _wait(browser, lambda d: any(c["name"] == "_token" for c in d.get_cookies()))
        return next(c["value"] for c in browser.get_cookies() if c["name"] == "_token")

    return log_in
