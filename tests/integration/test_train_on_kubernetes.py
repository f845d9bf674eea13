"""A training DAG end to end on the `kubernetes` backend: the real KubernetesPodOperator code path (deferrable,
its trigger, log streaming, XCom sidecar over exec) talks through a kubeconfig to the emulated API server,
whose node agent runs the pod's `python -m mlops.train` as a local process. Nothing in the provider or the
kubernetes client is patched."""

import base64
import json
import sys
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from helpers import ROOT
from mlops import tracking
from mlops.audit import AuditLog

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)
NODES = [
    {"name": "cpu-1", "labels": {"cloud.google.com/gke-nodepool": "cpu"}},
    {"name": "l4-1", "labels": {"cloud.google.com/gke-nodepool": "l4", "cloud.google.com/gke-accelerator": "nvidia-l4"},
     "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}], "gpus": 2},
]


@contextmanager
def emulated_cluster(tmp_path, monkeypatch, platform, **options):
    """The emulated cluster, its tracking Secret, and Airflow's kubernetes connection pointing at it."""
    from kubernetes import client

    from k8s_emulator import Cluster

    with Cluster(tmp_path / "kubeconfig", nodes=NODES, executables={"python": sys.executable},
                 namespace="mlops", **options) as emulated:
        secret = base64.b64encode(platform.tracking_uri.encode()).decode()
        emulated.core_v1().create_namespaced_secret("mlops", client.V1Secret(
            metadata=client.V1ObjectMeta(name="mlops-tracking"), data={"MLFLOW_TRACKING_URI": secret}))
        monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(emulated.kubeconfig), "in_cluster": False, "namespace": "mlops"}}))
        monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "kubernetes")
        yield emulated


@pytest.fixture
def cluster(tmp_path, monkeypatch, platform, airflow_db):
    with emulated_cluster(tmp_path, monkeypatch, platform) as emulated:
        yield emulated


def states(dag_id, run_id):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}


def test_training_dag_trains_in_a_pod_and_promotes(cluster, platform):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    train = bag.dags["churn__train"].get_task("train")
    assert type(train).__name__ == "KubernetesTrainOperator" and train.deferrable
    dr = bag.dags["churn__train"].test(logical_date=D15)
    assert states("churn__train", dr.run_id) == {
        "validate_data": "success", "train": "success", "evaluate": "success", "promote": "success"}

    client = tracking.client(platform)
    champion = client.get_model_version_by_alias("churn", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags[tracking.RUN_ID] == dr.run_id and run.data.tags[tracking.WINDOW_LAST] == "2026-01-14"
    assert run.data.tags[tracking.IMAGE_DIGEST] == "local" and 0.6 < run.data.metrics["roc_auc"] < 1
    assert len(AuditLog(platform.audit_root, "churn").records()) == 1
    # The pod ran on the CPU pool's node, and a succeeded pod is deleted.
    scheduled = [e for e in cluster.core_v1().list_namespaced_event("mlops").items if e.reason == "Scheduled"]
    assert scheduled and "cpu-1" in scheduled[0].message
    assert cluster.core_v1().list_namespaced_pod("mlops", label_selector="app.kubernetes.io/managed-by=mlops-airflow").items == []


@pytest.fixture
def oom_cluster(tmp_path, monkeypatch, platform, airflow_db):
    with emulated_cluster(tmp_path, monkeypatch, platform, inject={"train-churn": "oom"}, fail_after=0.5) as emulated:
        yield emulated


def test_oom_killed_pod_fails_the_task_at_once_with_the_reason(oom_cluster, platform, capfd):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dr = bag.dags["churn__train"].test(logical_date=D15)
    got = states("churn__train", dr.run_id)
    assert got["train"] == "failed" and got["promote"] == "upstream_failed", got
    out = capfd.readouterr().out
    assert "was OOMKilled at its memory limit 2Gi; raise compute.memory in the spec" in out
    assert tracking.version_by_alias(platform, "churn", "champion") is None
