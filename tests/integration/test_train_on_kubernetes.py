"""A training DAG end to end on the `kubernetes` backend: the real KubernetesPodOperator code path (deferrable,
its trigger, log streaming, XCom sidecar over exec) talks through a kubeconfig to the emulated API server,
whose node agent runs the pod's `python -m mlops.train` as a local process. Nothing in the provider or the
kubernetes client is patched."""

from datetime import datetime, timezone

import pytest

from helpers import ROOT
from k8s_e2e import emulated_cluster, platform_pods, states
from mlops import tracking
from mlops.audit import AuditLog

D15 = datetime(2026, 1, 15, tzinfo=timezone.utc)


@pytest.fixture
def cluster(tmp_path, monkeypatch, platform, airflow_db):
    with emulated_cluster(tmp_path, monkeypatch, platform) as emulated:
        yield emulated


def test_training_dag_trains_in_a_pod_and_promotes(cluster, platform):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    train = bag.dags["churn__train"].get_task("train")
    assert type(train).__name__ == "KubernetesTrainOperator" and train.deferrable
    dr = bag.dags["churn__train"].test(logical_date=D15)
    assert states("churn__train", dr.run_id) == {
        "check_request": "success", "validate_data": "success", "train": "success", "evaluate": "success",
        "promote": "success"}

    client = tracking.client(platform)
    champion = client.get_model_version_by_alias("churn", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags[tracking.RUN_ID] == dr.run_id and run.data.tags[tracking.WINDOW_LAST] == "2026-01-14"
    assert run.data.tags[tracking.IMAGE_DIGEST] == "local" and 0.6 < run.data.metrics["roc_auc"] < 1
    assert len(AuditLog(platform.audit_root, "churn").records()) == 1
    # The pod ran on the CPU pool's node, and a succeeded pod is deleted.
    scheduled = [e for e in cluster.core_v1().list_namespaced_event("mlops").items if e.reason == "Scheduled"]
    assert scheduled and "cpu-1" in scheduled[0].message
    assert platform_pods(cluster) == []


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
    assert platform_pods(oom_cluster) == []  # a failed pod is deleted too, once its reason is in the log


def test_gke_backend_trains_the_pytorch_model_on_a_spot_gpu_compute_class(tmp_path, monkeypatch, platform, airflow_db):
    """The `gke` backend: GKEStartPodOperator's own path (cluster lookup, Google credentials, the GKE
    trigger) against an emulated GKE control plane; only the cluster lookup is patched. The model is the
    PyTorch example on its spot L4 pool (the emulated node has no real GPU, so it trains on the CPU)."""
    from k8s_e2e import gke_cluster, training_dag, write_spec

    write_spec(tmp_path, monkeypatch, name="demand_nn", pool="l4-spot", cpu="1", memory="4Gi")
    with gke_cluster(tmp_path, monkeypatch, platform) as cluster:
        dag = training_dag("demand_nn__train")
        assert type(dag.get_task("train")).__name__ == "GKETrainOperator"
        dr = dag.test(logical_date=D15)
        assert states("demand_nn__train", dr.run_id)["promote"] == "success"
        # GKE picked the node: the pod asked for the compute class (spot first, on-demand fallback), one GPU.
        assert [e.message.split(" to ")[-1] for e in cluster.core_v1().list_namespaced_event("mlops").items
                if e.reason == "Scheduled"] == ["l4-spot-cc-1"]
        assert platform_pods(cluster) == []
        # Every call came with a token the emulated Google OAuth endpoint issued for the service account.
        issued = {t["token"] for t in cluster.oauth.issued}
        assert issued and issued <= cluster.tokens_seen and cluster.tokens_seen - issued <= {"emulator-token"}
        assert {t["iss"] for t in cluster.oauth.issued} == {"airflow@emulated-project.iam.gserviceaccount.com"}
        lookup = cluster.cluster_lookup.call_args
        assert lookup.kwargs == {"name": "training", "project_id": "emulated-project"}
    champion = tracking.client(platform).get_model_version_by_alias("demand_nn", "champion")
    run = tracking.client(platform).get_run(champion.run_id)
    assert run.data.tags["mlops.train.device"] == "cpu" and run.data.tags["mlops.train.torch"].startswith("2.13.0")
    assert run.data.metrics["train_samples_per_s"] > 0 and run.data.metrics["r2"] > 0.5
    # Its cost: the training container's time from the pod's status (start to end), one spot L4 and half
    # the node's price, from the catalogue.
    from mlops import cost
    from mlops.compute import catalogue_path, load_catalogue

    spot = load_catalogue(catalogue_path(platform.compute_dir)).pools["l4-spot"]
    wall = run.data.metrics[cost.WALL_SECONDS]
    assert wall >= 1 and run.data.metrics[cost.GPU_SECONDS] == wall and run.data.tags[cost.POOL] == "l4-spot"
    assert run.data.metrics[cost.ESTIMATE] == pytest.approx(
        wall / 3600 * (spot.price_per_gpu_hour + 0.5 * spot.price_per_node_hour), rel=1e-3)
