"""Shared set-up of the Kubernetes end-to-end tests: an emulated cluster with a CPU node and an L4 GPU
node, its tracking Secret, Airflow's kubernetes connection pointing at it, and specs written for one test."""

from __future__ import annotations

import base64
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from helpers import MODELS

MANAGED = "app.kubernetes.io/managed-by=mlops-airflow"
NODES = [
    {"name": "cpu-1", "labels": {"cloud.google.com/gke-nodepool": "cpu"}},
    {"name": "l4-1", "labels": {"cloud.google.com/gke-nodepool": "l4", "cloud.google.com/gke-accelerator": "nvidia-l4"},
     "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}], "gpus": 2},
]


def add_tracking_secret(cluster, tracking_uri: str, namespace: str = "mlops") -> None:
    from kubernetes import client

    secret = base64.b64encode(tracking_uri.encode()).decode()
    cluster.core_v1().create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="mlops-tracking"), data={"MLFLOW_TRACKING_URI": secret}))


@contextmanager
def emulated_cluster(tmp_path: Path, monkeypatch, platform, *, backend: str = "kubernetes", **options):
    """The emulated cluster, its tracking Secret, and Airflow's kubernetes connection pointing at it."""
    from k8s_emulator import Cluster

    options.setdefault("nodes", NODES)
    with Cluster(tmp_path / "kubeconfig", executables={"python": sys.executable}, namespace="mlops",
                 **options) as emulated:
        add_tracking_secret(emulated, platform.tracking_uri)
        monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(emulated.kubeconfig), "in_cluster": False, "namespace": "mlops"}}))
        monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", backend)
        yield emulated


GKE = {"MLOPS_GKE_PROJECT": "emulated-project", "MLOPS_GKE_LOCATION": "europe-west4", "MLOPS_GKE_CLUSTER": "training"}
GKE_NODES = [
    *NODES,
    # What GKE's node auto-provisioning makes for the compute class that prefers spot L4s.
    {"name": "l4-spot-cc-1", "gpus": 2,
     "labels": {"cloud.google.com/compute-class": "mlops-l4-spot-first", "cloud.google.com/gke-spot": "true",
                "cloud.google.com/gke-accelerator": "nvidia-l4"},
     "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
]


@contextmanager
def gke_cluster(tmp_path: Path, monkeypatch, platform, **options):
    """An emulated GKE cluster: HTTPS with its own CA, bearer tokens only from the emulated Google OAuth
    endpoint, a Google connection with a service-account key whose token_uri points there, and the one
    patch: GKE's cluster lookup (a Google API call) answers with the emulator's endpoint and CA."""
    from unittest import mock

    from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook
    from google.cloud import container_v1

    from k8s_emulator import Cluster
    from k8s_emulator.google_oauth import GoogleTokenServer

    options.setdefault("nodes", GKE_NODES)
    with Cluster(tmp_path / "kubeconfig", executables={"python": sys.executable}, namespace="mlops", tls=True,
                 require_token=True, **options) as emulated, GoogleTokenServer(on_issue=emulated.accept_token) as oauth:
        add_tracking_secret(emulated, platform.tracking_uri)
        key = tmp_path / "service-account.json"
        key.write_text(json.dumps(oauth.service_account_key("airflow@emulated-project.iam.gserviceaccount.com")))
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({
            "conn_type": "google_cloud_platform",
            "extra": {"key_path": str(key), "project": GKE["MLOPS_GKE_PROJECT"]}}))
        monkeypatch.delenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", raising=False)
        for name, value in {**GKE, "MLOPS_COMPUTE_BACKEND": "gke"}.items():
            monkeypatch.setenv(name, value)
        endpoint = container_v1.Cluster(
            name=GKE["MLOPS_GKE_CLUSTER"], endpoint=emulated.url.removeprefix("https://"),
            master_auth=container_v1.MasterAuth(cluster_ca_certificate=base64.b64encode(emulated.ca_pem).decode()))
        with mock.patch.object(GKEHook, "get_cluster", autospec=True, return_value=endpoint) as lookup:
            emulated.oauth, emulated.cluster_lookup = oauth, lookup
            yield emulated


def write_spec(tmp_path: Path, monkeypatch, name: str = "churn", **compute) -> dict:
    """A copy of an example spec with `compute` changed, as the only model of this test's DAG folder."""
    spec = yaml.safe_load((MODELS / f"{name}.yaml").read_text())
    spec["compute"].update(compute)
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    return spec


def task_instances(dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
    """task_id -> (state, try_number) as the metadata DB has them."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        return {ti.task_id: (str(getattr(ti.state, "value", ti.state)), ti.try_number) for ti in tis}


def states(dag_id: str, run_id: str) -> dict[str, str]:
    return {task: state for task, (state, _) in task_instances(dag_id, run_id).items()}


def platform_pods(cluster) -> list:
    return cluster.core_v1().list_namespaced_pod("mlops", label_selector=MANAGED).items


def training_dag(dag_id: str = "churn__train"):
    from airflow.dag_processing.dagbag import DagBag

    from helpers import ROOT

    return DagBag(dag_folder=str(ROOT / "dags")).dags[dag_id]
