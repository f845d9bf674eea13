"""The kubernetes backend's deferrable path in a real deployment: the train task starts its pod on the
emulated Kubernetes API, defers, the triggerer watches the pod, and the task resumes on a worker to
finish. The emulator runs in the test process and outlives the deployment."""

import pytest
from mlflow import MlflowClient

from k8s_e2e import MANAGED
from mlops import tracking
from waiting import wait_for_run

pytestmark = pytest.mark.services

MODEL, DAG_ID = "churn_pod", "churn_pod__train"


def start(api, airflow) -> dict:
    api.unpause(DAG_ID)
    return {"run_id": api.trigger(DAG_ID, "2026-01-15T00:00:00Z"), "seen": set(), "deferred": []}


def watch(api, state) -> bool:
    """The train task's states, and the task instance as the API shows it while deferred."""
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{state['run_id']}/taskInstances/train"
    ti = api.get(path, expect=(200, 404))
    if isinstance(ti, dict) and "state" in ti:
        state["seen"].add(ti["state"])
        if ti["state"] == "deferred":
            state["deferred"].append(ti)
    return api.run(DAG_ID, state["run_id"])["state"] not in ("success", "failed")


def test_the_train_task_defers_to_the_triggerer_while_its_pod_runs(airflow, api, started):
    state = started[__name__]
    run_id, seen, deferred = state["run_id"], state["seen"], state["deferred"]
    run = wait_for_run(api, DAG_ID, run_id, timeout=420)
    assert run["state"] == "success", api.failure_report(DAG_ID, run_id)
    assert not state.get("watch_errors"), state["watch_errors"]
    assert "deferred" in seen, f"the train task was never seen deferred (states seen: {seen})"

    ti = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/train")
    assert ti["operator"] == "KubernetesTrainOperator" and ti["try_number"] == 1 and ti["pool"] == "mlops-cpu"
    # While deferred, the task's trigger was the pod trigger, and the triggerer process had picked it up.
    triggers = [ti["trigger"] for ti in deferred if ti.get("trigger")]
    assert triggers and {t["classpath"].rsplit(".", 1)[-1] for t in triggers} == {"KubernetesPodTrigger"}, deferred
    jobs = [ti["triggerer_job"] for ti in deferred if ti.get("triggerer_job")]
    assert jobs and {j["job_type"] for j in jobs} == {"TriggererJob"}, deferred
    # One try, in three parts: start the pod and defer; the trigger waits for it; resume and finish.
    log = api.task_log(DAG_ID, run_id, "train")
    order = ["Pausing task as DEFERRED", "Checking pod", "Trigger fired event", "MLOPS_RESULT", "Deleting pod"]
    positions = [log.find(line) for line in order]
    assert -1 not in positions and positions == sorted(positions), log[-4000:]

    cluster = airflow.cluster
    scheduled = [e.message for e in cluster.core_v1().list_namespaced_event("mlops").items if e.reason == "Scheduled"]
    assert len(scheduled) == 1 and "cpu-1" in scheduled[0], scheduled
    assert cluster.core_v1().list_namespaced_pod("mlops", label_selector=MANAGED).items == []  # deleted on success

    client = MlflowClient(tracking_uri=airflow.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    tags = client.get_run(champion.run_id).data.tags
    assert tags[tracking.RUN_ID] == run_id and tags[tracking.WINDOW_LAST] == "2026-01-14"
