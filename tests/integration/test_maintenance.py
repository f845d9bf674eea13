"""The `mlops__maintenance` DAG against a real Airflow API server and the emulated cluster: it creates the
catalogue's pools through the REST API and deletes the training pods whose task instance is over,
leaving the pods of running tasks and pods that are not the platform's alone."""

from datetime import datetime, timezone

import pytest
from kubernetes import client

from airflow_api_server import airflow_api_server, connection_json
from k8s_e2e import emulated_cluster, platform_pods, task_instances, training_dag
from mlops import orphans

D1 = datetime(2026, 2, 1, tzinfo=timezone.utc)
D2 = datetime(2026, 2, 2, tzinfo=timezone.utc)
DAG_ID = "mlops__maintenance"


@pytest.fixture(scope="module")
def api_url(airflow_db, tmp_path_factory):
    with airflow_api_server(tmp_path_factory.mktemp("api-server")) as url:
        yield url


def run_id(day: datetime) -> str:
    from airflow.utils.types import DagRunType

    return DagRunType.MANUAL.generate_run_id(suffix=day.isoformat())


def training_pod(cluster, name: str, task: tuple[str, str, str, int] | None, managed: bool = True) -> None:
    labels = {"app.kubernetes.io/managed-by": "mlops-airflow"} if managed else {"app": "someone-else"}
    notes = None
    if task:
        dag_id, run, task_id, try_number = task
        notes = {orphans.ANNOTATION_DAG: dag_id, orphans.ANNOTATION_RUN: run, orphans.ANNOTATION_TASK: task_id,
                 orphans.ANNOTATION_TRY: str(try_number)}
    cluster.core_v1().create_namespaced_pod("mlops", client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels, annotations=notes),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="base", image="mlops-trainer:0.1.0", command=["python", "-c", "import time; time.sleep(120)"])])))


def returned(run: str, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as s:
        row = s.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run, task_id=task_id, key="return_value").one()
        return XComModel.deserialize_value(row)


def test_maintenance_syncs_pools_and_reaps_orphan_pods(api_url, tmp_path, monkeypatch, platform, capfd):
    from airflow.models.pool import Pool

    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_AIRFLOW_API", connection_json(api_url))
    with emulated_cluster(tmp_path, monkeypatch, platform) as cluster:
        dag = training_dag(DAG_ID)
        training_pod(cluster, "train-unlabelled", None)

        # Someone shrank a pool by hand (other tests may have created the pools already).
        Pool.create_or_update_pool("mlops-gpu-l4", 1, "shrunk by hand", include_deferred=False)

        # A dry run reports and changes nothing.
        dry = dag.test(logical_date=D1, run_after=D1, run_conf={"dry_run": True, "min_age_minutes": 0})
        assert task_instances(DAG_ID, dry.run_id) == {"sync_pools": ("success", 1), "reap_orphan_pods": ("success", 1)}
        assert Pool.get_pool("mlops-gpu-l4").slots == 1
        assert [p["pod"] for p in returned(dry.run_id, "reap_orphan_pods")] == ["train-unlabelled"]
        assert "update mlops-gpu-l4: 8 slots" in returned(dry.run_id, "sync_pools")

        # The pods of the real run: two finished tasks of the dry run, a run that never existed, and the
        # reaper's own task, which is running while it looks.
        training_pod(cluster, "train-finished", (DAG_ID, dry.run_id, "reap_orphan_pods", 1))
        training_pod(cluster, "train-finished-2", (DAG_ID, dry.run_id, "sync_pools", 1))
        training_pod(cluster, "train-no-run", ("churn__train", "manual__never", "train", 1))
        training_pod(cluster, "train-live", (DAG_ID, run_id(D2), "reap_orphan_pods", 1))
        training_pod(cluster, "not-ours", None, managed=False)

        # (A fresh DAG object: dag.test() keeps the first run's conf in the DAG's params.)
        real = training_dag(DAG_ID).test(logical_date=D2, run_after=D2, run_conf={"min_age_minutes": 0})
        assert real.run_id == run_id(D2)
        assert task_instances(DAG_ID, real.run_id)["reap_orphan_pods"] == ("success", 1)
        reaped = {p["pod"]: p["reason"] for p in returned(real.run_id, "reap_orphan_pods")}
        assert reaped == {
            "train-unlabelled": "no task annotations (started outside the platform's operators?)",
            "train-finished": f"task {DAG_ID}.reap_orphan_pods of run {dry.run_id} is success",
            "train-finished-2": f"task {DAG_ID}.sync_pools of run {dry.run_id} is success",
            "train-no-run": "task churn__train.train of run manual__never no longer exists",
        }
        assert [p.metadata.name for p in platform_pods(cluster)] == ["train-live"]
        assert [p.metadata.name for p in cluster.core_v1().list_namespaced_pod("mlops").items
                if p.metadata.name == "not-ours"] == ["not-ours"]

    pool = Pool.get_pool("mlops-gpu-l4")
    assert (pool.slots, pool.include_deferred) == (8, True) and Pool.get_pool("mlops-cpu").slots == 32
    assert "deleted mlops/train-no-run: task churn__train.train" in capfd.readouterr().out


def test_maintenance_skips_when_every_model_trains_locally(airflow_db, monkeypatch):
    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "local")
    dr = training_dag(DAG_ID).test(logical_date=D1, run_after=D1)
    assert task_instances(DAG_ID, dr.run_id) == {"sync_pools": ("skipped", 1), "reap_orphan_pods": ("skipped", 1)}


def test_promotion_pools_are_synced_when_every_model_trains_locally(api_url, airflow_db, monkeypatch):
    """Local training still promotes: a deployment with the API connection gets each model's promotion pool."""
    from airflow.models.pool import Pool

    from mlops.locks import promotion_pool

    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "local")
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_AIRFLOW_API", connection_json(api_url))
    day = datetime(2026, 2, 4, tzinfo=timezone.utc)
    dr = training_dag(DAG_ID).test(logical_date=day, run_after=day)
    assert task_instances(DAG_ID, dr.run_id) == {"sync_pools": ("success", 1), "reap_orphan_pods": ("skipped", 1)}
    assert Pool.get_pool(promotion_pool("churn")).slots == 1


def test_reaper_reaches_a_gke_cluster_with_google_credentials(api_url, tmp_path, monkeypatch, platform):
    from k8s_e2e import gke_cluster

    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_AIRFLOW_API", connection_json(api_url))
    with gke_cluster(tmp_path, monkeypatch, platform) as cluster:
        training_pod(cluster, "train-no-run", ("churn__train", "manual__never", "train", 1))
        day = datetime(2026, 2, 3, tzinfo=timezone.utc)
        dr = training_dag(DAG_ID).test(logical_date=day, run_after=day, run_conf={"min_age_minutes": 0})
        assert [p["pod"] for p in returned(dr.run_id, "reap_orphan_pods")] == ["train-no-run"]
        assert platform_pods(cluster) == []
        assert {t["token"] for t in cluster.oauth.issued} & cluster.tokens_seen
