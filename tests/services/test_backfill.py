"""A backfill created through the REST API (as the UI's backfill form does): the scheduler runs several
of its runs at once, every run trains on its own data interval, and the champion never moves back to a
model trained on older data, whatever order the concurrent runs finish in."""

from datetime import date, timedelta

import pytest
from mlflow import MlflowClient

from airflow_deployment import REPORT
from mlops import tracking
from mlops.audit import AuditLog
from waiting import wait_for

pytestmark = pytest.mark.services

MODEL, DAG_ID = "churn_backfill", "churn_backfill__train"
FIRST, LAST = date(2026, 1, 10), date(2026, 1, 14)
DAYS = (LAST - FIRST).days + 1


def start(api, airflow) -> dict:
    api.unpause(DAG_ID)  # paused DAGs' backfill runs stay queued; the DAG has no run due (starts in 2099)
    backfill = api.post("/api/v2/backfills", {
        "dag_id": DAG_ID, "from_date": f"{FIRST}T00:00:00Z", "to_date": f"{LAST}T00:00:00Z",
        "max_active_runs": 2, "reprocess_behavior": "none", "run_backwards": False})
    return {"backfill": backfill, "most_running": 0, "over_limit": []}


def backfill_runs(api) -> list[dict]:
    return [r for r in api.runs(DAG_ID) if r["run_type"] == "backfill"]


def watch(api, state) -> bool:
    """How many of the backfill's runs are running at once, until all have finished."""
    runs = backfill_runs(api)
    running = [r["dag_run_id"] for r in runs if r["state"] == "running"]
    state["most_running"] = max(state["most_running"], len(running))
    if len(running) > 2:
        state["over_limit"].append(running)
    return not (len(runs) == DAYS and all(r["state"] in ("success", "failed") for r in runs))


def test_backfill_runs_concurrently_each_on_its_own_interval_and_never_moves_the_champion_back(
        airflow, api, started):
    state = started[__name__]
    backfill = state["backfill"]
    assert backfill["max_active_runs"] == 2 and backfill["is_paused"] is False

    def finished():
        runs = backfill_runs(api)
        return runs if len(runs) == DAYS and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = wait_for(finished, timeout=480, poll=2, what=f"the {DAYS} backfill runs of {DAG_ID}")
    assert not state.get("watch_errors"), state["watch_errors"]
    # Two at once (the backfill's own limit, not the DAG's max_active_runs=1), never more.
    assert state["most_running"] == 2, f"never saw two backfill runs running at once (at most {state['most_running']})"
    assert state["over_limit"] == []
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    assert not failed, "\n".join(api.failure_report(DAG_ID, run_id) for run_id in failed)
    done = wait_for(lambda: api.get(f"/api/v2/backfills/{backfill['id']}")["completed_at"], timeout=60,
                    what="the backfill to be marked complete")
    assert done

    # Each run trained on the window ending the day before its own logical date.
    client = MlflowClient(tracking_uri=airflow.tracking_uri)
    experiment = client.get_experiment_by_name(f"mlops/{MODEL}")
    trained = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tracking.KIND}` = 'train'")
    by_airflow_run = {r.data.tags[tracking.RUN_ID]: r for r in trained}
    assert set(by_airflow_run) == {r["dag_run_id"] for r in runs}
    for run in runs:
        tags = by_airflow_run[run["dag_run_id"]].data.tags
        logical = date.fromisoformat(run["logical_date"][:10])
        assert tags[tracking.WINDOW_LAST] == str(logical - timedelta(days=1)), (run, tags)
        assert tags[tracking.AIRFLOW_INTERVAL_END][:10] == str(logical), (run, tags)
    assert len({r.data.tags[tracking.FINGERPRINT] for r in trained}) == DAYS  # five different windows

    # The champion only ever moved forward in data time.
    records = [r for r in AuditLog(str(airflow.audit_root), MODEL).records() if r.alias == "champion"]
    assert records, "no promotion was recorded"

    def last_day(version: str) -> str:
        return client.get_run(client.get_model_version(MODEL, version).run_id).data.tags[tracking.WINDOW_LAST]

    chain = [f"v{records[0].from_version}" if records[0].from_version else "none"]
    for record in records:
        if record.from_version is not None:
            assert last_day(record.to_version) >= last_day(record.from_version), record
        chain.append(f"v{record.to_version} (data to {last_day(record.to_version)})")
    REPORT.append(f"backfill of {DAG_ID}: {DAYS} runs, at most {state['most_running']} at once; champion "
                  + " -> ".join(chain))
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == records[-1].to_version
