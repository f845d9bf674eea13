"""The fleet page as a person sees it: headless Chromium (Debian's package, driven through its
ChromeDriver) logs in through Airflow's login page, opens the page, and the test reads what is on the
screen. A screenshot is saved (MLOPS_UI_SCREENSHOT, default: the test's tmp folder)."""

import os
from pathlib import Path

# The `browser` fixture (Debian's Chromium, skipped or failed under CI when missing) is in tests/browser_session.py.


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(condition)


def _log_in(browser, fleet_server, username="admin"):
    """Through the fleet page's "Log in" link and Airflow's login form; ends on the fleet page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, (_, password) = fleet_server["url"], fleet_server["users"][username]
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


def test_a_person_logs_in_and_sees_the_fleet(fleet_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url = fleet_server["url"]
    _log_in(browser, fleet_server)
    # The page's one stylesheet is inline: the page's CSP allows it by hash, so it applies.
    assert browser.execute_script("return getComputedStyle(document.querySelector('h1')).fontSize") == "22px"

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


PAYLOADS = ('<img src=x onerror="document.title=\'pwned\'">', "<script>window.pwned = true</script>")


def _failed_validation_with_payloads(fleet_server, sample_data_root) -> str:
    """demand's window with HTML in its `store` column, validated into the server's Data Docs site the way
    the validate_data step does; returns the rows page's path inside the site."""
    import dataclasses
    from datetime import datetime, timezone

    from helpers import EXPECTATIONS, load_example
    from mlops import data
    from mlops.validation import validate_window

    spec = load_example("demand")
    window = data.resolve_window(spec, str(sample_data_root), datetime(2026, 1, 21, tzinfo=timezone.utc))
    loaded = data.load_window(spec, str(sample_data_root), window)
    frame = loaded.frame.copy()
    frame["store"] = frame["store"].astype(object)
    frame.loc[: len(PAYLOADS) - 1, "store"] = list(PAYLOADS)
    docs = fleet_server["home"] / "reports" / "demand" / "data_docs"
    report = validate_window(spec, dataclasses.replace(loaded, frame=frame), docs.parents[1],
                             "manual__payload", EXPECTATIONS)
    assert not report.success and [f.column for f in report.blocking] == ["store"], report.message()
    (page,) = [p for p in report.docs_pages if p.endswith("demand-rows.html")]
    raw = open(page, encoding="utf-8").read()
    assert PAYLOADS[0] in raw  # GX writes the value into the page as HTML: only the serving can defuse it
    return os.path.relpath(page, docs)


def test_data_docs_of_hostile_data_run_nothing(fleet_server, sample_data_root, browser):
    """A data value holding HTML is written raw into the Data Docs page of the failed validation; opened by
    a logged-in person through the fleet app, it must not run, and the failure must still read."""
    import time

    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    page = _failed_validation_with_payloads(fleet_server, sample_data_root)
    _log_in(browser, fleet_server)
    browser.get(f"{fleet_server['url']}/mlops/data-docs/demand/{page}")
    _wait(browser, lambda d: "demand.rows" in d.find_element(By.TAG_NAME, "body").text)
    time.sleep(1.5)  # an onerror handler would have fired by now: the broken image fails at once
    assert browser.title != "pwned" and browser.execute_script("return window.pwned === undefined")
    try:
        alert = browser.switch_to.alert.text
    except NoAlertPresentException:
        alert = None
    assert alert is None, alert
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "store" in text and "values must belong to this set" in text, text[:2000]
    assert "unexpected" in text.lower()
    # Laid out by the local stylesheet, not by Bootstrap from a CDN: GX's walkthrough modal stays hidden.
    assert not any(m.is_displayed() for m in browser.find_elements(By.CSS_SELECTOR, ".modal"))

    # The site's index (GX builds it with JavaScript) lists the failed result and leads back to it.
    browser.find_element(By.LINK_TEXT, "Home").click()
    _wait(browser, lambda d: "Validation results" in d.find_element(By.TAG_NAME, "body").text)
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tr") if "demand-rows" in r.text)  # newest first
    assert "Failed" in row.text and "demand.rows" in row.text
    row.find_element(By.TAG_NAME, "a").click()
    _wait(browser, lambda d: "values must belong to this set" in d.find_element(By.TAG_NAME, "body").text)
    assert browser.title != "pwned"
