"""The retraining loop through the real scheduler: the monitor's alarm emits the retraining Asset event,
and the scheduler itself (not the test, not the demo's helper) starts an asset-triggered run of the
training DAG, which trains on the newest data and replaces the champion."""

from datetime import date

import pytest
from mlflow import MlflowClient

from mlops import tracking
from waiting import wait_for, wait_for_run

pytestmark = pytest.mark.services

MODEL = "demand"
TRAIN, MONITOR = f"{MODEL}__train", f"{MODEL}__monitor"


def run_to_success(api, dag_id: str, logical_date: str, timeout: float = 420) -> str:
    run_id = api.trigger(dag_id, logical_date)
    run = wait_for_run(api, dag_id, run_id, timeout=timeout)
    assert run["state"] == "success", api.failure_report(dag_id, run_id)
    return run_id


def start(api, airflow) -> dict:
    api.unpause(TRAIN)  # paused DAGs get no runs from asset events
    api.unpause(MONITOR)
    return {"champion_run": api.trigger(TRAIN, "2026-01-14T00:00:00Z")}  # trained on data up to Jan 13


def test_the_monitor_alarm_makes_the_scheduler_start_a_retraining_run(airflow, api, started):
    client = MlflowClient(tracking_uri=airflow.tracking_uri)
    champion_run = started[__name__]["champion_run"]
    run = wait_for_run(api, TRAIN, champion_run, timeout=420)
    assert run["state"] == "success", api.failure_report(TRAIN, champion_run)
    first = client.get_model_version_by_alias(MODEL, "champion")

    # The data drifts from Jan 17 (cooldown: no alarm before then): the first drifted day is one bad check,
    # the second makes two of the last three, and the alarm fires.
    quiet = run_to_success(api, MONITOR, "2026-01-18T00:00:00Z")
    assert api.task_states(MONITOR, quiet)["request_retraining"] == "skipped"
    assert [r for r in api.runs(TRAIN) if r["run_type"] == "asset_triggered"] == []
    alarm = run_to_success(api, MONITOR, "2026-01-19T00:00:00Z")
    assert api.task_states(MONITOR, alarm)["request_retraining"] == "success"

    events = api.get("/api/v2/assets/events", params={"source_dag_id": MONITOR})["asset_events"]
    assert len(events) == 1 and events[0]["source_run_id"] == alarm, events
    assert events[0]["extra"]["day"] == "2026-01-18" and events[0]["extra"]["champion_version"] == str(first.version)

    retrain = wait_for(lambda: [r for r in api.runs(TRAIN) if r["run_type"] == "asset_triggered"], timeout=120,
                       what=f"the scheduler to start an asset-triggered run of {TRAIN}")
    assert len(retrain) == 1, retrain
    run = wait_for_run(api, TRAIN, retrain[0]["dag_run_id"], timeout=420)
    assert run["state"] == "success", api.failure_report(TRAIN, run["dag_run_id"])
    assert run["logical_date"] is None  # "retrain now": the newest complete window, not an interval
    consumed = run.get("consumed_asset_events") or api.get(
        f"/api/v2/dags/{TRAIN}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")["asset_events"]
    assert [e["source_run_id"] for e in consumed] == [alarm]

    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version != first.version
    tags = client.get_run(champion.run_id).data.tags
    assert tags[tracking.RUN_ID] == run["dag_run_id"]
    assert tags[tracking.WINDOW_LAST] == str(date(2026, 1, 27))  # the newest partition that landed
