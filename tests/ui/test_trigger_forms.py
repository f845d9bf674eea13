"""Every kind of DAG started from its trigger form in Airflow's own UI, as a person does it: headless
Chromium logs in through the login page, opens each DAG's form and submits it, and the runs that result
(run by the services suite's deployment: scheduler, LocalExecutor, PostgreSQL) are checked through the
REST API. Training with the form's defaults, then forcing a promotion with a reason; a rollback with a
reason and no version; the champion deployed online with a reason; scoring, monitoring and maintenance with
their defaults. A screenshot of the
forced training's form is saved (MLOPS_UI_TRIGGER_SCREENSHOT, default: the test's tmp folder)."""

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest

from airflow_deployment import PASSWORD, USER, ApiClient
from waiting import wait_for_run

if not (shutil.which("chromium") and shutil.which("chromedriver")):
    reason = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI runs the browser tests: {reason}")
    pytest.skip(reason, allow_module_level=True)

pytestmark = pytest.mark.services

MODEL = "churn_form"  # its own model of the deployment: no other test reads its registry entry
TRAIN, ROLLBACK, SCORE, MONITOR, DEPLOY = (f"{MODEL}__{kind}" for kind in ("train", "rollback", "score", "monitor",
                                                                           "deploy"))
MAINTENANCE = "mlops__maintenance"
FORCE_REASON = "incident 7: the retrained model is needed now"
ROLLBACK_REASON = "v2 misbehaves in the retention campaign"
DEPLOY_REASON = "the retention app scores customers online from today"
RUN_TIMEOUT = 900  # the deployment runs every other services test's runs meanwhile


def _wait(browser, condition, timeout: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.25).until(condition)


def visible(browser, css: str):
    from selenium.webdriver.common.by import By

    return _wait(browser, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None))


def click(browser, target) -> None:
    """Clicks the element (or the visible one a CSS selector finds) once nothing covers it any more: a
    section that is opening still moves."""
    from selenium.common.exceptions import ElementClickInterceptedException

    def clicked(driver) -> bool:
        try:
            (visible(driver, target) if isinstance(target, str) else target).click()
        except ElementClickInterceptedException:
            return False
        return True

    _wait(browser, clicked, 30)


def open_form(browser, url: str, dag_id: str):
    """The DAG's page, then its Trigger button; returns the form's own Trigger (submit) button."""
    from selenium.webdriver.common.by import By

    browser.get(f"{url}/dags/{dag_id}")
    click(browser, "button[aria-label='Trigger Dag']")
    return _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]"))


def required_marks(browser) -> dict[str, bool]:
    """Each field of the open form by its title: whether the form marks it required (and refuses it empty).
    Read from the DOM, so fields in collapsed sections count too."""
    from selenium.webdriver.common.by import By

    labels = browser.find_elements(By.CSS_SELECTOR, "[role=dialog] label[data-part=label]")
    marks = {}
    for label in labels:
        title = (label.get_attribute("textContent") or "").replace("*", "").strip()
        if title:
            marks[title] = label.get_attribute("data-required") is not None
    return marks


def open_section(browser, section: str):
    click(browser, f"[role=dialog] button[id$=':trigger:{section}']")


def submit(browser, button) -> str:
    """Clicks the form's Trigger; the UI then shows the new run. Returns its id, from the page's address."""
    assert button.is_enabled(), "the form's Trigger button is disabled"
    click(browser, button)
    _wait(browser, lambda d: "/runs/" in d.current_url)
    return unquote(browser.current_url.split("/runs/", 1)[1].split("/")[0].split("?")[0])


def succeeded(api, dag_id: str, run_id: str) -> dict:
    run = wait_for_run(api, dag_id, run_id, timeout=RUN_TIMEOUT)
    assert run["state"] == "success", api.failure_report(dag_id, run_id)
    assert run["triggering_user_name"] == USER, run  # started by the person logged in, from the form
    return run


def task_failure(api, dag_id: str, run_id: str, task_id: str) -> str:
    """The exception a task failed with, as its log in the UI shows it (the line's error detail)."""
    body = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
                   params={"full_content": "true"})
    lines = [line for line in body["content"] if isinstance(line, dict)]
    return "\n".join(str(e.get("exc_value")) for line in lines for e in line.get("error_detail") or [])


def recent_churn_data(airflow) -> None:
    """The form's logical date defaults to now, so training with its defaults reads the three weeks before
    today: write them (the other churn models of the deployment train on fixed windows of January 2026)."""
    from mlops import synthetic

    today = datetime.now(timezone.utc).date()
    synthetic.generate("churn", today - timedelta(days=25), today, airflow.data_root)


def maintenance_connection(api, airflow) -> None:
    """Maintenance talks to Airflow's REST API (a deployment step; the Helm chart sets it the same way)."""
    api.post("/api/v2/connections", {"connection_id": "mlops_airflow_api", "conn_type": "http", "host": airflow.url,
                                     "login": USER, "password": PASSWORD}, expect=(201, 409))


def fill_in_forced_training(browser, c: str, reason: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_section(browser, "Hyperparameters")
    field = visible(browser, "[id='number-input:element_hp_C'] input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(c)
    open_section(browser, "Promotion")
    switch_on(browser, "switch:element_force_promote")
    browser.find_element(By.ID, "element_force_reason").send_keys(reason)


def switch_on(browser, switch_id: str) -> None:
    """Turns a form switch on as a person does: click it, and click again if the first click landed while
    the section was still opening (the switch ignores it); fails if it never turns on."""
    import time

    state = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if visible(browser, f"[id='{switch_id}']").get_attribute("data-state") == "checked":
            return  # a click that registered late
        click(browser, f"[id='{switch_id}:control']")
        settle = time.monotonic() + 2
        while time.monotonic() < settle:
            state = visible(browser, f"[id='{switch_id}']").get_attribute("data-state")
            if state == "checked":
                return
            time.sleep(0.1)
    raise AssertionError(f"the switch {switch_id} did not turn on (data-state {state!r})")


def test_every_kind_of_dag_runs_from_its_trigger_form(started, airflow, api, browser, log_in, tmp_path):
    # `started`: every other selected services test has started its runs; they go on while these do.
    recent_churn_data(airflow)
    maintenance_connection(api, airflow)
    person = ApiClient(airflow.url, log_in(airflow.url, USER, PASSWORD))  # the UI's own session token

    # Training with the form's defaults: only what always has a value is marked required, and it submits.
    button = open_form(browser, airflow.url, TRAIN)
    marks = required_marks(browser)
    assert not any(marks[f] for f in ("Reason for forcing", "Hyperparameter: C", "Hyperparameter: max_iter")), marks
    default_run = submit(browser, button)

    # Forced, with a reason (and a C of its own, so there is a new version to force). It waits for the
    # first run: one run of a training DAG at a time.
    button = open_form(browser, airflow.url, TRAIN)
    fill_in_forced_training(browser, c="0.3", reason=FORCE_REASON)
    screenshot = Path(os.environ.get("MLOPS_UI_TRIGGER_SCREENSHOT") or tmp_path / "trigger-form.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    forced_run = submit(browser, button)

    # Outside the form, the REST API is held to the same fields: a C the library refuses is refused when
    # the run is created, and a key no field has fails the run's first task, naming the field meant.
    refused = api.request("POST", f"/api/v2/dags/{TRAIN}/dagRuns", expect=(400,),
                          json={"logical_date": None, "conf": {"hp_C": -5}})
    assert "hp_C" in str(refused) and "minimum" in str(refused), refused
    typo_run = api.trigger(TRAIN, None, conf={"hp_c": 5})

    maintenance_run = submit(browser, open_form(browser, airflow.url, MAINTENANCE))

    run = succeeded(api, TRAIN, default_run)
    assert run["conf"] == {"hp_C": 1, "hp_max_iter": 300, "compute_pool": "cpu", "force_promote": False,
                           "force_reason": None}, run["conf"]
    assert api.task_states(TRAIN, default_run)["promote"] == "success"

    # A champion now: scoring and monitoring with their forms' defaults.
    score_run = submit(browser, open_form(browser, airflow.url, SCORE))
    monitor_run = submit(browser, open_form(browser, airflow.url, MONITOR))

    run = succeeded(api, TRAIN, forced_run)
    assert (run["conf"]["hp_C"], run["conf"]["force_promote"], run["conf"]["force_reason"]) == (
        0.3, True, FORCE_REASON), run["conf"]
    champion = person.get(f"/mlops/api/models/{MODEL}")["champion"]
    assert (champion["version"], champion["promotion_action"]) == ("2", "force_promote"), champion
    assert FORCE_REASON in champion["promotion_reason"], champion

    # The rollback: the reason is its one required field, and Trigger waits for it; no version means the
    # previous champion.
    button = open_form(browser, airflow.url, ROLLBACK)
    marks = required_marks(browser)
    assert (marks["Target version"], marks["Reason"]) == (False, True), marks
    assert not button.is_enabled()
    visible(browser, "#element_reason").send_keys(ROLLBACK_REASON)
    _wait(browser, lambda d: button.is_enabled(), 30)
    rollback_run = submit(browser, button)
    run = succeeded(api, ROLLBACK, rollback_run)
    assert run["conf"] == {"to_version": None, "reason": ROLLBACK_REASON}, run["conf"]
    model = person.get(f"/mlops/api/models/{MODEL}")
    assert (model["champion"]["version"], model["previous_champion"]["version"]) == ("1", "2"), model
    audit = model["last_audit"]
    assert (audit["action"], audit["from_version"], audit["to_version"], audit["reason"]) == (
        "rollback", "2", "1", ROLLBACK_REASON), audit
    assert audit["actor"].startswith(f"{USER} via airflow:{ROLLBACK}/"), audit

    # The champion online, from the deploy form: the version is optional (empty = the champion), as is the
    # reason; the run goes through every gate and the endpoint answers a request with the champion's version.
    button = open_form(browser, airflow.url, DEPLOY)
    marks = required_marks(browser)
    assert (marks["Version"], marks["Reason"]) == (False, False), marks
    visible(browser, "#element_reason").send_keys(DEPLOY_REASON)
    deploy_run = submit(browser, button)
    run = succeeded(api, DEPLOY, deploy_run)
    assert run["conf"] == {"version": None, "reason": DEPLOY_REASON}, run["conf"]
    states = api.task_states(DEPLOY, deploy_run)
    assert states.pop("roll_back") == "skipped" and set(states.values()) == {"success"}, states
    serving = person.get(f"/mlops/api/models/{MODEL}")["serving"]
    assert (serving["deployed"], serving["champion"], serving["ready"]) == ("v1", "v1", "1/1"), serving
    import requests

    answer = requests.post(f"{serving['endpoint']}/invocations", timeout=30, json={"dataframe_records": [
        {"tenure_months": 3, "monthly_charges": 80.5, "contract": "month-to-month", "support_calls": 4}]})
    assert answer.status_code == 200 and answer.headers["x-mlops-model-version"] == "1", answer.text
    assert 0 < answer.json()["predictions"][0] < 1
    assert serving["rollout"]["actor"].startswith(f"{USER} via airflow:{DEPLOY}/"), serving["rollout"]
    links = api.get(f"/api/v2/dags/{DEPLOY}/dagRuns/{deploy_run}/taskInstances/retire_old_version/links")
    assert links["extra_links"]["Endpoint health"] == f"{serving['endpoint']}/health", links
    assert links["extra_links"]["Model version"].endswith(f"/#/models/{MODEL}/versions/1"), links

    # Each with its work done, not skipped: the champion scored a partition, the monitor checked one, and
    # maintenance synced the pools and looked for orphaned pods (a model of the deployment trains on pods).
    for dag_id, run_id, tasks in ((SCORE, score_run, ["score"]), (MONITOR, monitor_run, ["validate_batch", "check"]),
                                  (MAINTENANCE, maintenance_run, ["sync_pools", "reap_orphan_pods"])):
        succeeded(api, dag_id, run_id)
        states = api.task_states(dag_id, run_id)
        assert {t: states[t] for t in tasks} == dict.fromkeys(tasks, "success"), (dag_id, states)

    typo = wait_for_run(api, TRAIN, typo_run, timeout=RUN_TIMEOUT)
    states = api.task_states(TRAIN, typo_run)
    assert typo["state"] == "failed" and states["check_request"] == "failed", states
    assert set(states.values()) == {"failed", "upstream_failed"}, states  # nothing read, nothing trained
    failure = task_failure(api, TRAIN, typo_run, "check_request")
    assert "hp_c: no such field in this model's trigger form; did you mean 'hp_C'?" in failure, failure
