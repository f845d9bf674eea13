"""The fleet page as a person sees it: headless Chromium (Debian's package, driven through its
ChromeDriver) logs in through Airflow's login page, opens the page, and the test reads what is on the
screen. A screenshot is saved (MLOPS_UI_SCREENSHOT, default: the test's tmp folder)."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER):
    reason = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI runs the browser test: {reason}")
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(condition)


def test_a_person_logs_in_and_sees_the_fleet(fleet_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, users = fleet_server["url"], fleet_server["users"]
    username, (_, password) = "admin", users["admin"]

    # Not logged in: the page says so and offers Airflow's login, which comes back here afterwards.
    browser.get(f"{url}/mlops/fleet")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Log in" in body and "churn" not in body
    browser.find_element(By.PARTIAL_LINK_TEXT, "Log in").click()

    user_box = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "input[type=text], input[name=username]"))
    user_box.send_keys(username)
    browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password + Keys.ENTER)
    _wait(browser, lambda d: any(c["name"] == "_token" for c in d.get_cookies()))
    if "/mlops/fleet" not in browser.current_url:
        browser.get(f"{url}/mlops/fleet")
    _wait(browser, lambda d: "churn" in d.find_element(By.TAG_NAME, "body").text)

    screenshot = Path(os.environ.get("MLOPS_UI_SCREENSHOT") or tmp_path / "fleet.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000

    text = browser.find_element(By.TAG_NAME, "body").text
    for model in ("churn", "demand", "demand_nn"):
        assert model in text
    assert "v1" in text and "roc_auc" in text  # churn's champion and its primary metric
    links = {a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")}
    assert any(h and h.endswith("/dags/churn__train") for h in links), links
    assert any(h and "#/models/churn/versions/1" in h for h in links), links

    # The page is reachable from Airflow's navigation: the UI builds its menu from the plugin list.
    import requests

    session_token = next(c["value"] for c in browser.get_cookies() if c["name"] == "_token")
    plugins = requests.get(f"{url}/api/v2/plugins", headers={"Authorization": f"Bearer {session_token}"},
                           timeout=30).json()["plugins"]
    (mlops,) = [p for p in plugins if p["name"] == "mlops"]
    assert [(v["name"], v["href"], v["destination"]) for v in mlops["external_views"]] == [
        ("Model fleet", "/mlops/fleet", "nav")]
