"""Approval gates on Airflow's human-in-the-loop operators (the standard provider's ApprovalOperator; on
Airflow 3.3 a waiting task is `awaiting_input` and listed under Required actions).

The request is written when the task runs, from what the run found out (the decision and metrics, or the
smoke test and bake), so the reviewer reads the evidence, not a template. Only the spec's approvers may
answer (Airflow answers 403 to anyone else); a silence becomes the spec's `on_timeout`. The answer is recorded
(mlops.approval) before the run goes on: approve lets the next task run; reject skips it, and a deployment's
candidate is stopped first, so the champion and the endpoint stay as they were.

Imported only by DAGs of specs that ask for approval: the provider's HITL module is not free to import.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.spec import ModelSpec
from mlops.spec.approval import Approval
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.notifications import notifier as notify

COMMENT = "comment"


def _comment_param() -> dict[str, Param]:
    return {COMMENT: Param(None, type=["null", "string"], maxLength=2000, title="Comment",
                           description="Why you approve or reject: goes to the audit record and the fleet page.")}


def roles_problem(approval: Approval) -> str | None:
    """Roles are matched by the API server's auth manager: one that does not know the platform's role entries
    would let nobody answer, so the request is refused up front rather than left to time out."""
    if not approval.roles:
        return None
    from airflow.sdk.configuration import conf

    from mlops_airflow.auth import RoleAwareHITL

    path = conf.get("core", "auth_manager", fallback="") or ""
    try:
        import importlib

        module, _, name = path.rpartition(".")
        manager = getattr(importlib.import_module(module), name)
    except Exception as exc:  # noqa: BLE001 - the message says what to do either way
        return f"the auth manager {path!r} could not be imported here to check it matches roles ({exc})"
    if isinstance(manager, type) and issubclass(manager, RoleAwareHITL):
        return None
    return (f"approval.roles {approval.roles} needs an auth manager that matches roles, and [core] auth_manager is "
            f"{path!r}: set it to mlops_airflow.auth.RoleAwareSimpleAuthManager (or mix RoleAwareHITL into yours, "
            "see the README's Human approval section), or name the approvers under approval.users")


class _ApprovalGate(ApprovalOperator):
    """What both gates share: respondents, timeout, default, the comment field, the record."""

    gate = ""
    ui_color = "#fff4d6"

    def __init__(self, *, spec: ModelSpec, approval: Approval, **kwargs: Any):
        kwargs.pop("params", None)  # the DAG's (the trigger form's): the request's form is the comment alone
        super().__init__(
            subject=f"{spec.name}: approval", body=None,
            assigned_users=approval.respondents,
            response_timeout=timedelta(minutes=approval.timeout_minutes),
            defaults=self._timeout_default(approval), params=_comment_param(),
            notifiers=notify.approval_notifiers(spec, approval), **kwargs)
        self.spec, self.approval = spec, approval

    @staticmethod
    def _timeout_default(approval: Approval) -> str:
        from mlops.approval import timeout_default

        return timeout_default(approval)

    def version(self, context: Any) -> str:
        raise NotImplementedError

    def request(self, context: Any) -> tuple[str, str]:
        raise NotImplementedError

    @with_mlflow_connection
    def execute(self, context: Any) -> Any:
        problem = roles_problem(self.approval)
        if problem:
            raise AirflowFailException(f"{self.spec.name}: {problem}")
        self.subject, self.body = self.request(context)
        self.log.info("%s\n%s", self.subject, self.body)
        self.log.info("waiting up to %g min for %s (then: %s)", self.approval.timeout_minutes, self.approval.who(),
                      self.approval.on_timeout)
        context["ti"].xcom_push("requested_at", _now())
        return super().execute(context)

    @with_mlflow_connection
    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from mlops import approval as approvals
        from mlops.settings import get_settings
        from mlops_airflow.runtime import actor

        if "error" in event:  # no answer and no default: the provider raises its own error
            super().execute_complete(context, event)
        verdict, by = approvals.verdict(event, self.approval)
        params = event.get("params_input") or {}
        settings, ti = get_settings(), context["ti"]
        log = approvals.ApprovalLog(settings.audit_root, self.spec.name)
        run, version = actor(context), self.version(context)
        record = log.for_run(self.gate, run, version) or log.append(approvals.ApprovalRecord(
            model=self.spec.name, gate=self.gate, version=version, verdict=verdict, by=by,
            comment=str(params.get(COMMENT) or "").strip(),
            requested_at=str(ti.xcom_pull(task_ids=ti.task_id, key="requested_at") or ""),
            responded_at=_iso(event.get("responded_at")), run=run, evidence={"subject": self.subject}))
        self.log.info("%s", record.says())
        self.on_verdict(context, record)
        # The provider's own handling: validates the answer, and on Reject skips the next task.
        super().execute_complete(context, event)
        return record.to_dict()

    def on_verdict(self, context: Any, record: Any) -> None:
        """What the gate does with the answer before the next task runs or is skipped."""


class PromotionApprovalOperator(_ApprovalGate):
    """Between evaluate and promote: asks the spec's approvers whether the challenger becomes champion.
    Skips itself (and so promote) when the policy does not promote: there is nothing to approve."""

    gate = "promotion"

    def __init__(self, *, spec: ModelSpec, evaluate_task_id: str = "evaluate", **kwargs: Any):
        assert spec.promotion.approval is not None
        super().__init__(spec=spec, approval=spec.promotion.approval, **kwargs)
        self.evaluate_task_id = evaluate_task_id

    def _summary(self, context: Any) -> dict[str, Any]:
        return context["ti"].xcom_pull(task_ids=self.evaluate_task_id) or {}

    def version(self, context: Any) -> str:
        return str(self._summary(context).get("challenger_version"))

    def request(self, context: Any) -> tuple[str, str]:
        from mlops.approval import promotion_request
        from mlops.fleet import mlflow_model_version_url, mlflow_run_url
        from mlops.settings import get_settings

        summary = self._summary(context)
        decision = summary.get("decision") or {}
        if not decision.get("promote"):
            raise AirflowSkipException(f"{self.spec.name}: nothing to approve: the policy does not promote "
                                       f"v{summary.get('challenger_version')} ({decision.get('outcome')}: "
                                       + "; ".join(decision.get("reasons") or []) + ")")
        settings = get_settings()
        train = context["ti"].xcom_pull(task_ids="train") or {}
        validation = context["ti"].xcom_pull(task_ids="validate_data") or {}
        links = {"challenger in MLflow": mlflow_model_version_url(settings, self.spec.name,
                                                                  summary.get("challenger_version")),
                 "champion in MLflow": mlflow_model_version_url(settings, self.spec.name,
                                                                summary.get("champion_version")),
                 "training run": mlflow_run_url(settings, train.get("cache_run_id") or train.get("run_id")),
                 "evaluation run": mlflow_run_url(settings, summary.get("evaluation_run_id")),
                 "Data Docs": _data_docs(self.spec.name, validation)}
        return promotion_request(self.spec.name, summary, self.approval, links)


class DeploymentApprovalOperator(_ApprovalGate):
    """Between the canary bake and the switch: asks whether the baked version takes all the traffic. On
    reject (or a rejecting timeout) the candidate is stopped here; the stable version served throughout."""

    gate = "deployment"

    def __init__(self, *, spec: ModelSpec, **kwargs: Any):
        assert spec.serving is not None and spec.serving.approval is not None
        super().__init__(spec=spec, approval=spec.serving.approval, **kwargs)

    def _plan(self, context: Any) -> dict[str, Any]:
        from mlops_airflow.operators.deploy import RESOLVE

        return context["ti"].xcom_pull(task_ids=RESOLVE) or {}

    def version(self, context: Any) -> str:
        return str(self._plan(context).get("version"))

    def request(self, context: Any) -> tuple[str, str]:
        from mlops.approval import deployment_request
        from mlops.fleet import mlflow_model_version_url
        from mlops.serving import rollout
        from mlops.settings import get_settings

        settings = get_settings()
        plan = self._plan(context)
        record = rollout._load(settings, self.spec, plan["rollout_id"])
        g = self.spec.serving.guardrails if self.spec.serving else None
        bake = dict(record.bake or {})
        if g is not None:
            bake["limits"] = {"error_rate": f"<= {g.max_error_rate:.2%}", "p99_ms": f"<= {g.max_p99_ms:g}",
                              "psi": f"<= {g.max_psi:g}", "disagreement": f"<= {g.max_disagreement:.0%}"}
        links = {"candidate in MLflow": mlflow_model_version_url(settings, self.spec.name, plan.get("version")),
                 "serving now in MLflow": mlflow_model_version_url(settings, self.spec.name, plan.get("from_version"))}
        return deployment_request(self.spec.name, {**plan, "actor": record.actor, "reason": record.reason},
                                  record.smoke or {}, bake, self.approval, links)

    def on_verdict(self, context: Any, record: Any) -> None:
        from mlops.serving import rollout
        from mlops.settings import get_settings
        from mlops_airflow.operators.deploy import serving_cluster

        settings = get_settings()
        plan = self._plan(context)
        cluster = serving_cluster(self.spec, settings)
        if record.approved:
            rollout.approval_given(settings, self.spec, plan["rollout_id"], record.to_dict())
            return
        result = rollout.reject(settings, self.spec, plan["rollout_id"], record.to_dict(), record.says(),
                                cluster=cluster)
        self.log.warning("%s", result["message"])


def _data_docs(model: str, validation: dict[str, Any]) -> str:
    from mlops.fleet import data_docs_relative
    from mlops.settings import get_settings
    from mlops_airflow.links import data_docs_url

    for page in validation.get("docs_pages") or []:
        relative = data_docs_relative(get_settings(), model, page)
        if relative:
            return data_docs_url(model, relative)
    return ""


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _iso(value: Any) -> str:
    if value is None:
        return _now()
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
