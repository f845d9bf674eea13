from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from mlops.spec import ModelSpec
from mlops_airflow.links import VERSION_LINKS
from mlops_airflow.tracking_connection import with_mlflow_connection


class PromoteModelOperator(BaseOperator):
    """Applies the decision: moves the champion alias under the model's lock and audits it.
    Retries and re-runs are safe: an applied promotion is not applied or recorded twice.

    Succeeds (and updates the champion asset, waking scoring and monitoring) only when the alias moved;
    is skipped when nothing changed, including when another run promoted while this one decided (its
    decision is stale: concurrent backfill runs do this)."""

    ui_color = "#f3e8f8"
    operator_extra_links = VERSION_LINKS

    def __init__(self, *, spec: ModelSpec, evaluate_task_id: str = "evaluate", **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.evaluate_task_id = evaluate_task_id

    @with_mlflow_connection
    def execute(self, context):
        from mlops.policy import Decision
        from mlops.promotion import promote
        from mlops.settings import get_settings
        from mlops_airflow.runtime import actor

        summary = context["ti"].xcom_pull(task_ids=self.evaluate_task_id)
        result = promote(
            get_settings(), self.spec, summary["challenger_version"], Decision(**summary["decision"]),
            expected_champion=summary["champion_version"], actor=actor(context),
            evidence={"holdout_fingerprint": summary["holdout_fingerprint"],
                      "evaluation_run_id": summary["evaluation_run_id"],
                      "challenger_metrics": summary["challenger_metrics"],
                      "champion_metrics": summary["champion_metrics"]},
        )
        if result.outcome == "stale":
            # Not a failure of this run: its challenger is unchanged and the next run compares it again.
            self.log.warning("%s", result.message)
        if result.outcome != "promoted":
            raise AirflowSkipException(result.message)
        self.log.info("%s", result.message)
        return result.to_dict()
