"""Promotion approval through the real Airflow: a training run of a gated model waits in `awaiting_input`
(Required actions) with the evidence in its request; people answer through the REST API v2 (`hitlDetails`),
as the UI does. An allowed user's approval moves the champion and names them in the audit record; someone
not named gets 403; a user of an allowed role rejects and the champion stays; a request nobody answers is
rejected when its time is up."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from waiting import wait_for, wait_for_run

pytestmark = pytest.mark.services

GATED, TIMED = "churn_gate", "churn_gate_timeout"
TASK = "approve_promotion"


def start(api, airflow) -> dict:
    for model in (GATED, TIMED):
        api.unpause(f"{model}__train")
    return {
        # One at a time (max_active_runs=1): the forced run waits for the first to finish.
        "approved": api.trigger(f"{GATED}__train", "2026-01-15T00:00:00Z"),
        "rejected": api.trigger(f"{GATED}__train", "2026-01-16T00:00:00Z",
                                conf={"force_promote": True, "force_reason": "second opinion wanted"}),
        "timed_out": api.trigger(f"{TIMED}__train", "2026-01-15T00:00:00Z"),
    }


def _hitl(model: str, run_id: str) -> str:
    return f"/api/v2/dags/{model}__train/dagRuns/{run_id}/taskInstances/{TASK}/-1/hitlDetails"


def _awaiting(api, model: str, run_id: str) -> dict:
    def waiting():
        states = api.task_states(f"{model}__train", run_id)
        if states.get(TASK) == "awaiting_input":
            return api.get(_hitl(model, run_id))
        run = api.run(f"{model}__train", run_id)
        assert run["state"] not in ("success", "failed"), api.failure_report(f"{model}__train", run_id)
        return None

    return wait_for(waiting, timeout=600, what=f"{model} run {run_id} to wait for approval")


def _approvals(airflow, model: str):
    from mlops.approval import ApprovalLog

    return ApprovalLog(str(airflow.audit_root), model).records()


def test_an_allowed_user_approves_and_the_champion_moves_with_their_name_on_it(airflow, api, started):
    run_id = started[__name__]["approved"]
    detail = _awaiting(api, GATED, run_id)
    assert detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"]
    assert {u["id"] for u in detail["assigned_users"]} == {"mlops-approver", "role:op"}
    assert "promote v1 to champion" in detail["subject"]
    body = detail["body"]
    for evidence in ("**Reasons**", "**Holdout metrics**", "| roc_auc |", "training run", "evaluation run"):
        assert evidence in body, body

    for outsider in ("mlops-intruder", None):  # a user not named, and the admin: Airflow says 403
        client = airflow.client_as(outsider) if outsider else api
        answer = client.request("PATCH", _hitl(GATED, run_id), expect=(403,),
                                json={"chosen_options": ["Approve"], "params_input": {"comment": "me too"}})
        assert "not a respondent" in str(answer)
    assert api.task_states(f"{GATED}__train", run_id)[TASK] == "awaiting_input"

    answered = airflow.client_as("mlops-approver").patch(
        _hitl(GATED, run_id), {"chosen_options": ["Approve"], "params_input": {"comment": "metrics hold up"}})
    assert answered["responded_by"]["id"] == "mlops-approver"
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


def test_a_user_of_an_allowed_role_rejects_and_the_champion_stays(airflow, api, started):
    run_id = started[__name__]["rejected"]
    detail = _awaiting(api, GATED, run_id)
    assert "(forced)" in detail["subject"]
    airflow.client_as("mlops-reviewer").patch(
        _hitl(GATED, run_id), {"chosen_options": ["Reject"], "params_input": {"comment": "not without a reason"}})
    run = wait_for_run(api, f"{GATED}__train", run_id, timeout=300)
    assert run["state"] == "success", api.failure_report(f"{GATED}__train", run_id)
    states = api.task_states(f"{GATED}__train", run_id)
    assert states[TASK] == "success" and states["promote"] == "skipped", states

    champion = MlflowClient(tracking_uri=airflow.tracking_uri).get_model_version_by_alias(GATED, "champion")
    assert str(champion.version) == "1"
    rejected = [a for a in _approvals(airflow, GATED) if a.verdict == "rejected"]
    assert [(a.version, a.by, a.comment) for a in rejected] == [("2", "mlops-reviewer", "not without a reason")]


def test_a_request_nobody_answers_is_rejected_when_its_time_is_up(airflow, api, started):
    run_id = started[__name__]["timed_out"]
    run = wait_for_run(api, f"{TIMED}__train", run_id, timeout=600)
    assert run["state"] == "success", api.failure_report(f"{TIMED}__train", run_id)
    states = api.task_states(f"{TIMED}__train", run_id)
    assert states[TASK] == "success" and states["promote"] == "skipped", states
    assert MlflowClient(tracking_uri=airflow.tracking_uri).get_registered_model(TIMED).aliases == {}
    [approval] = _approvals(airflow, TIMED)
    assert approval.verdict == "timed_out_rejected" and approval.by is None
    assert "rejected on timeout" in approval.says()
