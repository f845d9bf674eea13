"""Approval gates without Airflow running: the spec section, what a reviewer reads, what an answer (or a
silence) becomes, the record, the role-aware auth manager, the mail, and where the gates sit in the DAGs."""

from __future__ import annotations

import pytest
import yaml

from helpers import ROOT
from mlops import notifications
from mlops.approval import ApprovalLog, ApprovalRecord, deployment_request, promotion_request, verdict
from mlops.spec import SpecError, parse_spec
from mlops.spec.approval import Approval

MODELS = ROOT / "include" / "models"


def churn(**changes) -> dict:
    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    for key, value in changes.items():
        data.setdefault(key, {}).update(value)
    return data


def test_the_spec_names_who_may_approve_and_every_problem_at_once():
    spec = parse_spec(churn(promotion={"approval": {"users": ["ana"], "roles": ["op"], "timeout_minutes": 30}}))
    gate = spec.promotion.approval
    assert gate is not None and gate.on_timeout == "reject"
    assert gate.respondents == [{"id": "ana", "name": "ana"}, {"id": "role:op", "name": "any user with role op"}]
    assert gate.who() == "ana or role(s) op"

    bad = churn(promotion={"approval": {"timeout_minutes": 0, "on_timeout": "maybe", "email": ["nope"]}},
                serving={"approval": {"users": ["role:op"]}})
    with pytest.raises(SpecError) as err:
        parse_spec(bad)
    text = str(err.value)
    for field in ("promotion.approval.timeout_minutes", "promotion.approval.on_timeout", "promotion.approval.email",
                  "serving.approval.users"):
        assert field in text, text
    assert "write roles under `roles`" in text
    with pytest.raises(SpecError, match="at least one of `users` or `roles`"):
        parse_spec(churn(promotion={"approval": {"timeout_minutes": 5}}))


def test_the_schema_for_editors_knows_the_gate():
    from mlops.spec import json_schema

    schema = json_schema()
    assert "Approval" in schema["$defs"]
    assert set(schema["$defs"]["Approval"]["properties"]) == {"users", "roles", "timeout_minutes", "on_timeout",
                                                             "email"}


def _summary(**decision) -> dict:
    return {"challenger_version": "4", "champion_version": "3", "holdout_rows": 1200,
            "holdout_fingerprint": "abcdef0123456789", "challenger_metrics": {"roc_auc": 0.8123, "log_loss": 0.41},
            "champion_metrics": {"roc_auc": 0.7911, "log_loss": 0.44},
            "comparison": {"metric": "roc_auc", "challenger": 0.8123, "champion": 0.7911, "improvement": 0.0212,
                           "ci_low": 0.004, "ci_high": 0.037, "confidence": 0.95},
            "decision": {"promote": True, "outcome": "promote", "forced": False,
                         "reasons": ["roc_auc improved by 0.0212 (95% CI 0.0040..0.0370)"],
                         "warnings": ["holdout has 40 rows of the smaller class"], **decision}}


def test_a_promotion_request_shows_the_decision_the_metrics_and_the_links():
    gate = Approval(users=["ana"], timeout_minutes=60)
    subject, body = promotion_request("churn", _summary(), gate, {"training run": "http://mlflow/#/runs/r1",
                                                                  "Data Docs": ""})
    assert subject == "churn: promote v4 to champion? (champion now v3)"
    assert "roc_auc improved by 0.0212" in body and "holdout has 40 rows" in body
    assert "| roc_auc | 0.8123 | 0.7911 |" in body and "| log_loss | 0.4100 | 0.4400 |" in body
    assert "[training run](http://mlflow/#/runs/r1)" in body and "Data Docs" not in body  # no empty links
    assert "60 min pass: reject" in body and "May answer: ana" in body
    forced, _ = promotion_request("churn", _summary(forced=True), gate, {})
    assert "(forced)" in forced


def test_a_deployment_request_shows_every_bake_figure_beside_its_limit():
    gate = Approval(roles=["op"])
    subject, body = deployment_request(
        "churn", {"version": "5", "from_version": "4", "actor": "ana via airflow:x", "reason": "new stores"},
        {"rows": 50, "max_abs_diff": 1e-9, "tolerance": 1e-6},
        {"requests": 200, "error_rate": 0.0, "p50_ms": 3.1, "p99_ms": 9.5, "psi": 0.012,
         "limits": {"error_rate": "<= 0.00%", "p99_ms": "<= 1000", "psi": "<= 0.2"}}, gate, {})
    assert subject == "churn: let v5 take all online traffic? (serving now v4)"
    assert "| p99 ms | 9.5000 | <= 1000 |" in body and "| PSI vs stable | 0.0120 | <= 0.2 |" in body
    assert "| requests | 200 |" in body and "50 holdout rows" in body and "new stores" in body


@pytest.mark.parametrize("response, expected", [
    ({"chosen_options": ["Approve"], "responded_by_user": {"id": "ana", "name": "ana"}}, ("approved", "ana")),
    ({"chosen_options": ["Reject"], "responded_by_user": {"id": "7", "name": "bo"}}, ("rejected", "bo")),
    ({"chosen_options": ["Reject"], "responded_by_user": None, "timedout": True}, ("timed_out_rejected", None)),
    ({"chosen_options": ["Approve"], "responded_by_user": None, "timedout": True}, ("timed_out_approved", None)),
])
def test_an_answer_or_a_silence_becomes_a_verdict(response, expected):
    assert verdict(response, Approval(users=["ana"])) == expected


def test_records_are_appended_and_found_again_for_their_run(tmp_path):
    log = ApprovalLog(str(tmp_path), "churn")
    first = log.append(ApprovalRecord("churn", "promotion", "4", "rejected", "bo", "too early", "t0", "t1",
                                      "airflow:churn__train/r1"))
    log.append(ApprovalRecord("churn", "deployment", "4", "timed_out_rejected", None, "", "t0", "t2",
                              "airflow:churn__deploy/r2"))
    assert [r.verdict for r in log.records()] == ["rejected", "timed_out_rejected"]
    assert log.for_run("promotion", "airflow:churn__train/r1", "4") == first
    assert log.for_run("promotion", "airflow:churn__train/r9", "4") is None
    assert first.says() == "promotion of v4 rejected (by bo, t1): 'too early'" and not first.approved
    assert "nobody answered in time" in log.records()[1].says()


def test_roles_are_matched_by_the_role_aware_auth_manager_only():
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from mlops_airflow.auth import RoleAwareSimpleAuthManager, user_roles

    manager = RoleAwareSimpleAuthManager()
    reviewer = SimpleAuthManagerUser(username="bo", role="op")
    intruder = SimpleAuthManagerUser(username="cy", role="user")
    assigned = {"ana", "role:op"}
    assert manager.is_authorized_hitl_task(assigned_users=assigned, user=reviewer)
    assert not manager.is_authorized_hitl_task(assigned_users=assigned, user=intruder)
    assert manager.is_authorized_hitl_task(assigned_users=assigned, user=SimpleAuthManagerUser(username="ana",
                                                                                              role="viewer"))

    class FabLikeUser:
        roles = [type("Role", (), {"name": "Reviewer"})(), type("Role", (), {"name": "Viewer"})()]

    assert user_roles(FabLikeUser()) == {"Reviewer", "Viewer"}


def test_a_gate_with_roles_refuses_an_auth_manager_that_would_let_nobody_answer(monkeypatch):
    from mlops_airflow.operators.approval import roles_problem

    gate = Approval(roles=["op"])
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    problem = roles_problem(gate)
    assert problem is not None and "mlops_airflow.auth.RoleAwareSimpleAuthManager" in problem
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "mlops_airflow.auth.RoleAwareSimpleAuthManager")
    assert roles_problem(gate) is None
    assert roles_problem(Approval(users=["ana"])) is None  # users need nothing of the auth manager


def test_the_mail_carries_the_request_and_the_link_to_answer_it():
    task = notifications.TaskRef(dag_id="churn__train", task_id="approve_promotion", run_id="r1")
    subject, lines = notifications.approval_requested(
        "churn", task, "churn: promote v4 to champion? (champion now v3)", "### evidence\n- reason one",
        "http://airflow/dags/churn__train/runs/r1/tasks/approve_promotion/required_actions?map_index=-1")
    assert subject == "[mlops] approval requested: churn: promote v4 to champion? (champion now v3)"
    assert "- reason one" in lines
    html = notifications.as_html(lines)
    assert '<a href="http://airflow/dags/churn__train/runs/r1/tasks/approve_promotion/required_actions?' in html


def test_approvers_get_the_mail_only_when_someone_is_named():
    from mlops_airflow.notifications.notifier import approval_notifiers

    spec = parse_spec(churn(promotion={"approval": {"users": ["ana"], "email": ["leads@example.com"]}},
                            notifications={"email": ["oncall@example.com"], "events": ["promoted"]}))
    [notifier] = approval_notifiers(spec, spec.promotion.approval)
    assert notifier.to == ["leads@example.com"] and notifier.event == "approval_requested"
    both = parse_spec(churn(promotion={"approval": {"users": ["ana"], "email": ["leads@example.com"]}},
                            notifications={"email": ["oncall@example.com"], "events": ["approval_requested"]}))
    assert approval_notifiers(both, both.promotion.approval)[0].to == ["leads@example.com", "oncall@example.com"]
    quiet = parse_spec(churn(promotion={"approval": {"users": ["ana"]}}, notifications={"email": []}))
    assert approval_notifiers(quiet, quiet.promotion.approval) == []


def test_the_gates_sit_between_the_decision_and_the_change(tmp_path):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from mlops_airflow.builders.deploy_dag import build_deploy_dag
    from mlops_airflow.builders.factory import build_training_dag

    spec = parse_spec(churn(promotion={"approval": {"users": ["ana"], "timeout_minutes": 45}},
                            serving={"approval": {"roles": ["op"], "on_timeout": "approve"}}))
    train = build_training_dag(spec, tmp_path / "churn.yaml")
    gate = train.get_task("approve_promotion")
    assert isinstance(gate, ApprovalOperator)
    assert gate.upstream_task_ids == {"evaluate"} and gate.downstream_task_ids == {"promote"}
    assert gate.defaults == ["Reject"] and gate.response_timeout.total_seconds() == 45 * 60
    assert gate.assigned_users == [{"id": "ana", "name": "ana"}] and set(gate.params) == {"comment"}

    deploy = build_deploy_dag(spec, [])
    switch_gate = deploy.get_task("approve_switch")
    assert switch_gate.upstream_task_ids == {"canary_bake"} and switch_gate.downstream_task_ids == {
        "switch_traffic", "roll_back"}
    assert switch_gate.defaults == ["Approve"]

    plain = parse_spec(churn())
    assert "approve_promotion" not in build_training_dag(plain, tmp_path / "churn.yaml").task_ids
    assert "approve_switch" not in build_deploy_dag(plain, []).task_ids
