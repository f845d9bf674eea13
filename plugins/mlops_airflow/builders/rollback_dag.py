"""`<model>__rollback`: moves a model's champion alias back, from the trigger form, audited."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from mlops.spec import ModelSpec
from mlops_airflow.assets import champion_asset
from mlops_airflow.notifications import notifier as notify
from mlops_airflow.operators.rollback import RollbackOperator


def build_rollback_dag(spec: ModelSpec, tags: list[str]) -> DAG:
    p = spec.promotion
    with DAG(
        dag_id=spec.rollback_dag_id,
        description=f"Move the {p.alias} alias of {spec.name} back (default: to the {p.previous_alias})",
        schedule=None,
        start_date=spec.start_datetime,
        catchup=False,
        max_active_runs=1,
        tags=["mlops", "rollback", *tags],
        doc_md=(f"### {spec.name}: rollback\nPoints `{p.alias}` at the target version and `{p.previous_alias}` at "
                "the version it replaces, under the same lock as promotions, with an audit record (who, why). "
                "Scoring and monitoring follow the alias from their next run. The audit trail: "
                f"`python -m mlops.registry audit {spec.name}` or the fleet page."),
        params={
            "to_version": Param(
                None, type=["null", "string"], pattern=r"^(v?[0-9]+)?$", title="Target version",
                description=f"The registered version to make {p.alias} again, e.g. 3. Empty: the version that "
                            f"holds the `{p.previous_alias}` alias (the champion before the current one)."),
            "reason": Param(
                type="string", minLength=3, maxLength=500, title="Reason",
                description="Why the champion goes back: written to the audit log and the notification."),
        },
        default_args={"owner": spec.owner},
        auto_register=False,
    ) as dag:
        RollbackOperator(task_id="rollback", spec=spec, outlets=[champion_asset(spec)],
                         on_success_callback=notify.callbacks(spec, "rolled_back"))
    return dag
