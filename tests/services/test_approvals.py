"""Promotion approval through the real Airflow: a training run of a gated model waits in `awaiting_input`
(Required actions) with the evidence in its request; people answer through the REST API v2 (`hitlDetails`),
as the UI does. An allowed user's approval moves the champion and names them in the audit record; someone
not named gets 403; a request nobody answers is rejected when its time is up and the champion stays. The same
gate before a deployment's switch: approved in the browser by a user of an allowed role, the version serves;
rejected, its candidate is stopped and the version that served goes on answering."""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from waiting import wait_for, wait_for_run

pytestmark = pytest.mark.services

GATED = "churn_gate"
TASK = "approve_promotion"


def start(api, airflow) -> dict:
    api.unpause(f"{GATED}__train")
    api.unpause(f"{GATED}__deploy")  # the first promotion's champion event starts its first deploy
    return {
        "airflow": airflow,
        # One at a time (max_active_runs=1): the forced run waits for the first to finish.
        "approved": api.trigger(f"{GATED}__train", "2026-01-15T00:00:00Z"),
        "timed_out": api.trigger(f"{GATED}__train", "2026-01-16T00:00:00Z",
                                 conf={"force_promote": True, "force_reason": "second opinion wanted"}),
    }


DEPLOY_TASK = "approve_switch"
READING_SECONDS = 5


def _hitl(model: str, run_id: str, kind: str = "train", task: str = TASK) -> str:
    return f"/api/v2/dags/{model}__{kind}/dagRuns/{run_id}/taskInstances/{task}/-1/hitlDetails"


def _awaiting(api, model: str, run_id: str, kind: str = "train", task: str = TASK) -> dict:
    dag = f"{model}__{kind}"

    def waiting():
        states = api.task_states(dag, run_id)
        if states.get(task) == "awaiting_input":
            return api.get(_hitl(model, run_id, kind, task))
        run = api.run(dag, run_id)
        assert run["state"] not in ("success", "failed"), api.failure_report(dag, run_id)
        return None

    detail = wait_for(waiting, timeout=600, what=f"{dag} run {run_id} to wait for approval")
    # A person reads the request before answering. An answer within the scheduler loop that parks the task
    # races Airflow 3.3.2's executor-event handling: the task, resumed and queued already, is then failed as
    # "changed externally" (the resume-after-defer guard covers `scheduled` only, not `queued`).
    time.sleep(READING_SECONDS)
    return detail


def _served_version(endpoint: str, airflow) -> str:
    """The version that answers a real request at the model's stable address."""
    import pandas as pd

    from mlops.serving import endpoint as client
    from mlops.spec import load_spec

    spec = load_spec(airflow.models_dir / f"{GATED}.yaml")
    rows = pd.read_parquet(airflow.data_root / "churn" / "date=2026-01-10" / "part-0.parquet")
    answer = client.invoke(client.session(), endpoint, client.frame_body(rows[list(spec.dataset.features)].head(2)),
                           timeout=30)
    assert answer.ok, client.describe(answer)
    return answer.version


def _rollouts(airflow):
    from mlops.serving.records import RolloutLog

    return RolloutLog(str(airflow.audit_root), GATED).all()


def _approvals(airflow, model: str):
    from mlops.approval import ApprovalLog

    return ApprovalLog(str(airflow.audit_root), model).records()


def watch(api, state) -> bool:
    """The first promotion request is answered as soon as it is there (after reading it): its timeout is a
    minute, and the run reaches it while earlier tests still run. Outsiders try first."""
    run_id = state["approved"]
    if api.task_states(f"{GATED}__train", run_id).get(TASK) != "awaiting_input":
        if api.run(f"{GATED}__train", run_id)["state"] in ("success", "failed"):
            state.setdefault("watch_errors", []).append(api.failure_report(f"{GATED}__train", run_id))
            return False
        return True
    state["detail"] = api.get(_hitl(GATED, run_id))
    time.sleep(READING_SECONDS)  # see _awaiting
    airflow, body = state["airflow"], {"chosen_options": ["Approve"], "params_input": {"comment": "me too"}}
    state["outsiders"] = [str(client.request("PATCH", _hitl(GATED, run_id), expect=(403,), json=body))
                          for client in (airflow.client_as("mlops-intruder"), api)]  # not named; the admin
    state["still_waiting"] = api.task_states(f"{GATED}__train", run_id)[TASK]
    state["answered"] = airflow.client_as("mlops-approver").patch(
        _hitl(GATED, run_id), {"chosen_options": ["Approve"], "params_input": {"comment": "metrics hold up"}})
    return False


def test_an_allowed_user_approves_and_the_champion_moves_with_their_name_on_it(airflow, api, started):
    state = started[__name__]
    run_id = state["approved"]
    wait_for(lambda: "answered" in state or state.get("watch_errors"), timeout=900, what="the first request")
    assert not state.get("watch_errors"), state["watch_errors"]
    detail = state["detail"]
    assert detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"]
    assert {u["id"] for u in detail["assigned_users"]} == {"mlops-approver", "role:op"}
    assert "promote v1 to champion" in detail["subject"]
    body = detail["body"]
    for evidence in ("**Reasons**", "**Holdout metrics**", "| roc_auc |", "training run", "evaluation run"):
        assert evidence in body, body

    # a user not named, and the admin: Airflow says 403, and the request still waits
    assert len(state["outsiders"]) == 2 and all("not a respondent" in a for a in state["outsiders"])
    assert state["still_waiting"] == "awaiting_input"
    assert state["answered"]["responded_by"]["id"] == "mlops-approver"
    run = wait_for_run(api, f"{GATED}__train", run_id, timeout=300)
    assert run["state"] == "success", api.failure_report(f"{GATED}__train", run_id)
    assert api.task_states(f"{GATED}__train", run_id)["promote"] == "success"

    champion = MlflowClient(tracking_uri=airflow.tracking_uri).get_model_version_by_alias(GATED, "champion")
    assert str(champion.version) == "1"
    from mlops.audit import AuditLog

    record = AuditLog(str(airflow.audit_root), GATED).last_for_alias("champion")
    assert record.to_version == "1" and record.action == "promote"
    assert record.evidence["approval"]["by"] == "mlops-approver"
    assert record.evidence["approval"]["comment"] == "metrics hold up"
    assert "approved (by mlops-approver" in record.reason
    [approval] = [a for a in _approvals(airflow, GATED) if a.version == "1"]
    assert approval.verdict == "approved" and approval.responded_at


def answer_in_the_browser(browser, log_in, airflow, dag_id: str, run_id: str, task_id: str, option: str,
                          comment: str, user: str = "mlops-approver") -> None:
    """As a person answers: logs in, opens the task's Required actions page (the link the mail carries), reads
    the request, writes a comment and clicks the option's button."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from airflow_deployment import PEOPLE

    log_in(airflow.url, user, PEOPLE[user][1])
    browser.get(f"{airflow.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/required_actions")
    wait = WebDriverWait(browser, 120, poll_frequency=0.25)
    try:
        wait.until(lambda d: "Canary bake" in d.find_element(By.TAG_NAME, "body").text)
        box = wait.until(lambda d: next((e for e in d.find_elements(By.ID, "element_comment") if e.is_displayed()),
                                        None))
        box.send_keys(comment)
        button = wait.until(lambda d: next((b for b in d.find_elements(By.TAG_NAME, "button")
                                            if b.text.strip() == option and b.is_enabled()), None))
        button.click()
        wait.until(lambda d: not any(b.text.strip() == option and b.is_enabled()
                                     for b in d.find_elements(By.TAG_NAME, "button")))
    except Exception:
        print(browser.page_source[-20000:])
        raise


def test_a_deployment_waits_after_its_bake_and_serves_once_approved(airflow, api, started, browser, log_in):
    runs = wait_for(lambda: api.runs(f"{GATED}__deploy"), timeout=300, what="the champion event's deploy run")
    run_id = runs[0]["dag_run_id"]
    detail = _awaiting(api, GATED, run_id, "deploy", DEPLOY_TASK)
    assert "let v1 take all online traffic?" in detail["subject"]
    for evidence in ("**Smoke test:** 50 holdout rows", "**Canary bake**", "| requests | 40 |", "| p99 ms |"):
        assert evidence in detail["body"], detail["body"]
    assert _rollouts(airflow)[-1].verdict == "running"  # the candidate waits, started and baked

    answer_in_the_browser(browser, log_in, airflow, f"{GATED}__deploy", run_id, DEPLOY_TASK, "Approve", "ship it",
                          user="mlops-reviewer")  # not named: allowed by the role `op`
    answered = api.get(_hitl(GATED, run_id, "deploy", DEPLOY_TASK))
    assert answered["responded_by_user"]["id"] == "mlops-reviewer" and answered["chosen_options"] == ["Approve"]
    run = wait_for_run(api, f"{GATED}__deploy", run_id, timeout=300)
    assert run["state"] == "success", api.failure_report(f"{GATED}__deploy", run_id)
    rollout = _rollouts(airflow)[-1]
    assert rollout.verdict == "deployed" and rollout.approval["by"] == "mlops-reviewer"
    assert "approval" in [s["step"] for s in rollout.steps]
    from mlops.audit import AuditLog

    record = AuditLog(str(airflow.audit_root), GATED).last_for_alias("deployed")
    assert record.to_version == "1" and record.evidence["approval"]["comment"] == "ship it"
    assert _served_version(rollout.endpoint, airflow) == "1"


def test_a_request_nobody_answers_is_rejected_when_its_time_is_up(airflow, api, started):
    run_id = started[__name__]["timed_out"]
    run = wait_for_run(api, f"{GATED}__train", run_id, timeout=600)  # nobody answers
    assert run["state"] == "success", api.failure_report(f"{GATED}__train", run_id)
    states = api.task_states(f"{GATED}__train", run_id)
    assert states[TASK] == "success" and states["promote"] == "skipped", states
    answered = api.get(_hitl(GATED, run_id))
    assert "(forced)" in answered["subject"] and "1 min pass: reject" in answered["body"]
    assert answered["chosen_options"] == ["Reject"] and answered["responded_by_user"] is None

    champion = MlflowClient(tracking_uri=airflow.tracking_uri).get_model_version_by_alias(GATED, "champion")
    assert str(champion.version) == "1"
    [approval] = [a for a in _approvals(airflow, GATED) if a.gate == "promotion" and a.version == "2"]
    assert approval.verdict == "timed_out_rejected" and approval.by is None
    assert "rejected on timeout" in approval.says()


def test_a_rejected_deployment_stops_its_candidate_and_the_serving_version_goes_on(airflow, api, started):
    # v2 exists once the rejected promotion's run trained it (the test above waited for that run)
    run_id = api.trigger(f"{GATED}__deploy", None, conf={"version": "2", "reason": "try the challenger online"})
    detail = _awaiting(api, GATED, run_id, "deploy", DEPLOY_TASK)
    assert "let v2 take all online traffic? (serving now v1)" in detail["subject"]
    assert "try the challenger online" in detail["body"]
    airflow.client_as("mlops-reviewer").patch(_hitl(GATED, run_id, "deploy", DEPLOY_TASK),
                                              {"chosen_options": ["Reject"], "params_input": {"comment": "not yet"}})
    run = wait_for_run(api, f"{GATED}__deploy", run_id, timeout=300)
    assert run["state"] == "success", api.failure_report(f"{GATED}__deploy", run_id)
    states = api.task_states(f"{GATED}__deploy", run_id)
    assert states[DEPLOY_TASK] == "success" and states["switch_traffic"] == "skipped", states
    assert states["roll_back"] == "skipped", states  # the gate stopped the candidate itself

    rollout = _rollouts(airflow)[-1]
    assert rollout.to_version == "2" and rollout.verdict == "rolled_back"
    assert rollout.failure["step"] == "approval" and "rejected (by mlops-reviewer" in rollout.failure["reason"]
    [rejected] = [a for a in _approvals(airflow, GATED) if a.gate == "deployment" and a.version == "2"]
    assert (rejected.verdict, rejected.by, rejected.comment) == ("rejected", "mlops-reviewer", "not yet")
    champion = MlflowClient(tracking_uri=airflow.tracking_uri).get_model_version_by_alias(GATED, "deployed")
    assert str(champion.version) == "1"
    assert _served_version(rollout.endpoint or _rollouts(airflow)[-2].endpoint, airflow) == "1"
    from mlops.serving import control

    serving = control.find(airflow.mlops_home / "serving")
    versions = {p.get("version") for p in serving.status()["models"][GATED]["processes"]} if serving else set()
    assert versions == {"1"}, serving.status() if serving else "no supervisor"
