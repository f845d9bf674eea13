"""Promote and rollback hold the model's one-slot pool: one that hangs must time out, not block the model."""

from datetime import timedelta

from helpers import ROOT


def test_promote_and_rollback_time_out():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    for dag_id, task_id in (("churn__train", "promote"), ("churn__rollback", "rollback")):
        task = bag.dags[dag_id].get_task(task_id)
        assert task.pool == "mlops-promotion-churn" and task.pool_slots == 1
        assert task.execution_timeout == timedelta(minutes=15), dag_id
