"""A training run triggered through the REST API with a hyperparameter override, run by the real
scheduler and LocalExecutor, lands in the MLflow registry as the champion with the override."""

import pytest
from mlflow import MlflowClient

from waiting import wait_for_run

pytestmark = pytest.mark.services

DAG_ID = "churn__train"


def start(api, airflow) -> dict:
    api.unpause(DAG_ID)
    return {"run_id": api.trigger(DAG_ID, "2026-01-15T00:00:00Z", conf={"hp_C": 0.5})}


def test_triggered_training_run_promotes_a_champion_with_the_override(airflow, api, started):
    run_id = started[__name__]["run_id"]
    run = wait_for_run(api, DAG_ID, run_id, timeout=420)
    assert run["state"] == "success", api.failure_report(DAG_ID, run_id)
    assert run["run_type"] == "manual" and run["conf"] == {"hp_C": 0.5}
    states = api.task_states(DAG_ID, run_id)
    assert {t: states.get(t) for t in ("validate_data", "train", "evaluate", "promote")} == {
        "validate_data": "success", "train": "success", "evaluate": "success", "promote": "success"}, states

    client = MlflowClient(tracking_uri=airflow.tracking_uri)
    champion = client.get_model_version_by_alias("churn", "champion")
    trained = client.get_run(champion.run_id)
    assert trained.data.params["hp.C"] == "0.5" and trained.data.params["hp.max_iter"] == "300"
    assert trained.data.tags["mlops.airflow.run_id"] == run_id
    assert trained.data.tags["mlops.window.last_day"] == "2026-01-14"
