"""The `mlops__maintenance` DAG: hourly upkeep of what the cluster backends leave behind.

* sync_pools: create or update the catalogue's Airflow pools (a task in a missing pool never runs);
* reap_orphan_pods: delete training pods whose task instance is over, and report them.

Both go through Airflow's REST API (connection `mlops_airflow_api`), since tasks may not touch the
metadata DB. On a deployment where every model trains locally both tasks skip.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Param

from mlops.compute import effective_backend
from mlops.spec import ModelSpec

DAG_ID = "mlops__maintenance"


def cluster_backends(specs: list[ModelSpec]) -> list[str]:
    return sorted({b for b in (effective_backend(s.compute.backend) for s in specs) if b != "local"})


def build_maintenance_dag(specs: list[ModelSpec]) -> DAG:
    from mlops.settings import get_settings
    from mlops_airflow.operators.maintenance import ReapOrphanPodsOperator, SyncAirflowPoolsOperator

    backends = cluster_backends(specs)
    api_conn_id = get_settings().airflow_api.conn_id
    with DAG(
        dag_id=DAG_ID,
        description="Sync the Airflow pools from the compute catalogue; delete orphaned training pods",
        schedule="@hourly",
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["mlops", "maintenance"],
        doc_md=__doc__,
        params={
            "dry_run": Param(False, type="boolean", title="Dry run", description="Report, change nothing."),
            "min_age_minutes": Param(15, type="integer", minimum=0, title="Minimum pod age (minutes)",
                                     description="Younger pods are left alone: their task may not have reported yet."),
        },
        default_args={"owner": "mlops-platform", "retries": 1, "retry_delay": timedelta(minutes=5)},
        auto_register=False,
    ) as dag:
        SyncAirflowPoolsOperator(task_id="sync_pools", cluster_backends=backends, api_conn_id=api_conn_id,
                                        dry_run="{{ params.dry_run }}")
        ReapOrphanPodsOperator(task_id="reap_orphan_pods", cluster_backends=backends, api_conn_id=api_conn_id,
                                      min_age_minutes="{{ params.min_age_minutes }}", dry_run="{{ params.dry_run }}")
    return dag
