"""The DAGs that put a model's champion to work and watch it: `<model>__score` and `<model>__monitor`.

The monitor validates the newest batch first (the same GX gates as training, on one day): bad data
stops the check instead of counting as drift. Its last task emits the retraining Asset event the
training DAG is scheduled on, only when the alarm fires.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from mlops.spec import ModelSpec
from mlops_airflow.assets import predictions_asset, retrain_asset
from mlops_airflow.notifications import notifier as notify
from mlops_airflow.operators import MonitorOperator, RequestRetrainingOperator, ScoreOperator, ValidateDataOperator


def build_score_dag(spec: ModelSpec, tags: list[str]) -> DAG:
    with DAG(
        dag_id=spec.score_dag_id,
        description=f"Score the newest partition with the {spec.promotion.alias} of {spec.name}",
        schedule=spec.scoring.schedule, start_date=spec.start_datetime, catchup=False, max_active_runs=4,
        tags=["mlops", "scoring", *tags],
        doc_md=f"### {spec.name}: batch scoring\nThe `{spec.promotion.alias}` alias is resolved when the run "
               f"starts; predictions go to `{spec.scoring.output_uri}`.",
        default_args={"owner": spec.owner, "retries": 1, "retry_delay": timedelta(minutes=5)},
        auto_register=False,
    ) as dag:
        ScoreOperator(task_id="score", spec=spec, outlets=[predictions_asset(spec)])
    return dag


def build_monitor_dag(spec: ModelSpec, tags: list[str]) -> DAG:
    one_day = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={
        "window": spec.dataset.window.model_copy(update={"days": 1})})})
    m = spec.monitoring
    with DAG(
        dag_id=spec.monitor_dag_id,
        description=f"Drift and quality of the {spec.name} champion; asks for retraining when warranted",
        schedule=m.schedule, start_date=spec.start_datetime, catchup=False, max_active_runs=1,
        tags=["mlops", "monitoring", *tags],
        doc_md=(f"### {spec.name}: monitoring\nvalidate_batch -> check -> request_retraining. Alarm: "
                f"{m.persistence} bad checks of the last {m.window}, cooldown {m.cooldown_days} day(s); critical "
                f"columns: {', '.join(c for c, v in m.columns.items() if v == 'critical') or 'none'}."),
        default_args={"owner": spec.owner, "retries": 1, "retry_delay": timedelta(minutes=5)},
        auto_register=False,
    ) as dag:
        validate = ValidateDataOperator(task_id="validate_batch", spec=one_day,
                                        on_failure_callback=notify.callbacks(spec, "validation_failed"))
        check = MonitorOperator(task_id="check", spec=spec)
        request = RequestRetrainingOperator(task_id="request_retraining", spec=spec, outlets=[retrain_asset(spec)],
                                            on_success_callback=notify.callbacks(spec, "drift_alarm"))
        validate >> check >> request
    return dag
