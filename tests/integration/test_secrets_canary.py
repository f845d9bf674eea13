"""Secrets stay out of the training pod: with a canary as the password of the MLflow connection, as the
token of the kubernetes connection's kubeconfig user, and in the worker's own environment (where the task
puts the MLflow credentials while it runs), the pod the provider renders carries none of them; the tracking
URI and credentials reach the pod only by reference to the Kubernetes Secret.

(The local backend's run against a real MLflow server, with the same canary checks on task output, log
files, XCom and MLflow, is tests/services/test_mlflow_server.py.)"""

import json
import secrets

import pytest
from kubernetes.client import ApiClient

from helpers import ROOT


@pytest.fixture
def canary(monkeypatch, tmp_path):
    value = f"canary-{secrets.token_hex(16)}"
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": "http://127.0.0.1:9"}}],  # nothing is sent here
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {"token": value}}],
    }
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
        "conn_type": "kubernetes", "extra": {"kube_config": json.dumps(kubeconfig), "namespace": "mlops"}}))
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_MLFLOW", json.dumps({
        "conn_type": "https", "host": "mlflow.example.internal", "login": "mlops-platform", "password": value}))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "mlops-platform")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", value)
    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "kubernetes")
    return value


def test_the_rendered_training_pod_carries_no_secret(canary, platform, airflow_db, capfd):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    train = bag.dags["churn__train"].get_task("train")
    assert type(train).__name__ == "KubernetesTrainOperator"
    pod = ApiClient().sanitize_for_serialization(train.build_pod_request_obj())
    # The label says the hook built its client from the kubernetes connection, i.e. read the canary token.
    assert pod["metadata"]["labels"]["airflow_kpo_in_cluster"] == "False"
    assert canary not in json.dumps(pod)

    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert ("value" not in env[name]
                and env[name]["valueFrom"]["secretKeyRef"]["name"] == "mlops-tracking"), env[name]
    out = capfd.readouterr()
    assert canary not in out.out + out.err
