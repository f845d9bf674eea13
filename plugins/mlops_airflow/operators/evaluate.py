from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.links import VERSION_LINKS


class EvaluateModelOperator(BaseOperator):
    """Applies the promotion policy to the evidence the trainer gathered (challenger and champion scored on
    the same holdout, in the trainer's environment) and logs the decision. No model is loaded here."""

    ui_color = "#f8f0e0"
    operator_extra_links = VERSION_LINKS

    def __init__(self, *, spec: ModelSpec, train_task_id: str = "train", validate_task_id: str = "validate_data",
                 **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.train_task_id = train_task_id
        self.validate_task_id = validate_task_id

    @with_mlflow_connection
    def execute(self, context):
        from mlops import tracking
        from mlops.evaluate import decide_from_evidence, record_decision
        from mlops.policy import PolicyError
        from mlops.settings import get_settings

        settings = get_settings()
        ti = context["ti"]
        train_result = ti.xcom_pull(task_ids=self.train_task_id)
        validation = ti.xcom_pull(task_ids=self.validate_task_id) or {}
        tracking.attach_validation(settings, train_result.get("cache_run_id") or train_result["run_id"], validation)
        params = context["params"]
        try:
            decision = decide_from_evidence(self.spec, train_result["evidence"],
                                            force=bool(params.get("force_promote", False)),
                                            force_reason=params.get("force_reason") or None)
        except PolicyError as exc:
            raise AirflowFailException(f"{self.spec.name}: {exc}") from None
        summary = record_decision(settings, self.spec, train_result["evidence"], decision,
                                  {tracking.DAG_ID: ti.dag_id, tracking.RUN_ID: ti.run_id})
        d = summary["decision"]
        self.log.info("decision: %s%s\n  %s", d["outcome"], " (forced)" if d["forced"] else "",
                      "\n  ".join(d["reasons"]))
        for warning in d.get("warnings") or []:
            self.log.warning("decision warning: %s", warning)
        return summary
