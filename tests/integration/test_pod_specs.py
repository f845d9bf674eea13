"""Training pod requests as the provider builds them (`build_pod_request_obj`), for every pool in the
catalogue and both cluster backends, each validated against the Kubernetes API schema.

The `kubernetes` backend's operator reads a kubeconfig and sends nothing; the `gke` backend's is the real
GKETrainOperator (GKEStartPodOperator) against an emulated GKE control plane (tests/k8s_e2e.gke_cluster): its
hook looks the cluster up (the one patched Google call) and talks to the endpoint and CA that lookup names,
signed in with the Google connection's service account at the emulated OAuth endpoint."""

import json
import os
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from kubernetes.client import ApiClient

from helpers import MODELS, ROOT
from mlops.compute import load_catalogue
from mlops.spec import parse_spec

CATALOGUE = load_catalogue(ROOT / "include" / "compute" / "pools.yaml")
K8S_VERSION = "1.31.0"


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory):
    """The provider's hook reads a kubeconfig to build a pod; nothing is sent to this address."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {"token": "x"}}],
    }))
    return str(path)


def spec_on(pool, gpus):
    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    data["compute"].update(pool=pool, gpus=gpus, backend="kubernetes", retries=2)
    return parse_spec(data, catalogue=CATALOGUE)


def manifest(operator, context=None) -> dict:
    return ApiClient().sanitize_for_serialization(operator.build_pod_request_obj(context))


@pytest.fixture(scope="module")
def emulated_gke(tmp_path_factory):
    """One emulated GKE control plane for the module, with the settings and Google connection that point
    at it set only while a test that asks for `kpo_on` runs."""
    from k8s_e2e import GKE, gke_cluster

    unused = SimpleNamespace(tracking_uri="http://127.0.0.1:9")  # for the tracking Secret; no pod starts here
    with pytest.MonkeyPatch.context() as patch, gke_cluster(tmp_path_factory.mktemp("gke"), patch, unused) as cluster:
        settings = {**GKE, "MLOPS_COMPUTE_BACKEND": "gke",
                    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": os.environ["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"]}
        patch.undo()  # the environment is set per test (kpo_on); the cluster lookup stays patched
        yield cluster, settings


@pytest.fixture
def kpo(kubeconfig):
    """The `kubernetes` backend's operator (kpo_on builds either backend's)."""
    def build(spec):
        return _operator(spec, "kubernetes", config_file=kubeconfig)

    return build


@pytest.fixture
def kpo_on(request, kubeconfig, monkeypatch):
    """The training operator of a backend, ready to build pods: `kubernetes` from a kubeconfig, `gke` the
    real GKETrainOperator against the emulated GKE control plane."""
    def build(spec, backend):
        if backend == "kubernetes":
            return _operator(spec, backend, config_file=kubeconfig)
        cluster, settings = request.getfixturevalue("emulated_gke")
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", raising=False)
        build.cluster = cluster
        return _operator(spec, backend)

    return build


def _operator(spec, backend, **kwargs):
    from mlops_airflow.operators.train_gke import GKETrainOperator
    from mlops_airflow.operators.train_kubernetes import KubernetesTrainOperator

    operator = {"kubernetes": KubernetesTrainOperator, "gke": GKETrainOperator}[backend]
    return operator(task_id="train", spec=spec, catalogue=CATALOGUE, **kwargs)


@pytest.mark.parametrize("backend", ["kubernetes", "gke"])
@pytest.mark.parametrize("pool_name", sorted(CATALOGUE.pools))
def test_every_pool_gives_a_valid_pod(pool_name, backend, kpo_on):
    pool = CATALOGUE.pools[pool_name]
    spec = spec_on(pool_name, pool.gpus_per_node)
    operator = kpo_on(spec, backend)
    assert type(operator).__name__ == {"kubernetes": "KubernetesTrainOperator", "gke": "GKETrainOperator"}[backend]
    pod = manifest(operator)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["metadata"]["namespace"] == "mlops"
    if backend == "gke":  # the cluster the pod is for is the one the settings name, as Google describes it
        lookup = kpo_on.cluster.cluster_lookup.call_args.kwargs
        assert (lookup["name"], lookup["project_id"]) == ("training", "emulated-project")
        assert operator.hook.api_client.configuration.host == kpo_on.cluster.url
    else:
        assert pod["metadata"]["labels"]["airflow_kpo_in_cluster"] == "False"

    container = pod["spec"]["containers"][0]
    resources = container["resources"]
    if pool.gpu_resource:
        assert (resources["requests"][pool.gpu_resource] == resources["limits"][pool.gpu_resource]
                == str(pool.gpus_per_node))
    else:
        assert "nvidia.com/gpu" not in resources["requests"]
    selector = pod["spec"]["nodeSelector"]
    if backend == "gke" and pool.gke_compute_class:
        assert selector == {"cloud.google.com/compute-class": pool.gke_compute_class}
    else:
        assert selector == pool.node_selector
        assert len(pod["spec"].get("tolerations") or []) == len(pool.tolerations)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    for c in pod["spec"]["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, c["name"]
    assert pod["spec"]["activeDeadlineSeconds"] == spec.compute.timeout_minutes * 60
    assert pod["metadata"]["labels"]["mlops.airflow/model"] == "churn"
    env = {e["name"]: e for e in container["env"]}
    assert "value" not in env["MLFLOW_TRACKING_URI"]
    assert env["MLFLOW_TRACKING_URI"]["valueFrom"]["secretKeyRef"]["name"] == "mlops-tracking"
    assert "mlops-tracking" not in json.dumps(container.get("args", []))


def test_the_gke_operator_signs_in_to_its_cluster_with_the_google_connection(kpo_on):
    """Its own hook, not a kubeconfig: a Google access token for the connection's service account (from the
    emulated OAuth endpoint), the only kind of token the emulated API server accepts besides its kubeconfig's."""
    op = kpo_on(spec_on("cpu", 0), "gke")
    assert op.hook.core_v1_client.list_namespaced_pod("mlops").items == []
    cluster = kpo_on.cluster
    account = "airflow@emulated-project.iam.gserviceaccount.com"
    issued = {t["token"] for t in cluster.oauth.issued if t["iss"] == account}
    assert issued and issued & cluster.tokens_seen


@pytest.mark.parametrize("backend", ["kubernetes", "gke"])
def test_operator_settings_a_platform_team_expects(kpo_on, backend):
    op = kpo_on(spec_on("l4-spot", 2), backend)
    assert (op.pool, op.pool_slots) == ("mlops-gpu-l4", 2)
    assert op.deferrable is True
    assert str(op.on_finish_action.value) == "delete_pod"  # failed pods too, once their reason is logged
    assert op.schedule_timeout_seconds == 1800 and op.startup_timeout_seconds == 600
    assert op.do_xcom_push is True and op.image == "mlops-trainer:0.1.0"


def test_failed_pods_can_be_kept_for_debugging(kpo, monkeypatch):
    monkeypatch.setenv("MLOPS_KEEP_FAILED_PODS", "true")
    assert str(kpo(spec_on("cpu", 0)).on_finish_action.value) == "delete_succeeded_pod"


class _TI:
    """The slice of a task instance that rendering reads."""

    def __init__(self, try_number):
        self.try_number, self.dag_id, self.run_id = try_number, "churn__train", "scheduled__2026-01-15"
        self.task_id, self.map_index = "train", -1

    def xcom_pull(self, task_ids):
        assert task_ids == "validate_data"
        return {"window_last_day": "2026-01-14", "window_anchor": "data_interval", "fingerprint": "f" * 32}


def render(op, try_number, params=None):
    from datetime import datetime, timezone

    end = datetime(2026, 1, 15, tzinfo=timezone.utc)
    ti = _TI(try_number)
    context = {"ti": ti, "run_id": ti.run_id, "dag": object(), "params": params or {}, "logical_date": end,
               "data_interval_start": end, "data_interval_end": end}
    op.render_template_fields(context)
    return manifest(op, context)


@pytest.mark.parametrize("backend", ["kubernetes", "gke"])
def test_arguments_are_rendered_from_the_run_like_the_local_backend(kpo_on, backend):
    op = kpo_on(spec_on("cpu", 0), backend)
    pod = render(op, 1, {"hp_C": 0.5})
    args = pod["spec"]["containers"][0]["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags["--run-id"] == "scheduled__2026-01-15" and flags["--try-number"] == "1"
    assert flags["--window-last-day"] == "2026-01-14" and flags["--expected-fingerprint"] == "f" * 32
    assert flags["--data-interval-end"].startswith("2026-01-15")
    assert json.loads(flags["--params-json"]) == {"C": 0.5}
    assert json.loads(flags["--spec-json"])["name"] == "churn"
    assert flags["--result-path"] == "/airflow/xcom/return.json"
    notes = pod["metadata"]["annotations"]
    assert notes["mlops.airflow/run-id"] == "scheduled__2026-01-15" and notes["mlops.airflow/try-number"] == "1"
    labels = pod["metadata"]["labels"]
    assert (labels["dag_id"], labels["try_number"], labels["mlops.airflow/model"]) == ("churn__train", "1", "churn")
    assert labels["run_id"].startswith("scheduled__2026-01-15")


def test_last_try_of_a_spot_task_goes_to_the_on_demand_fallback(kpo):
    spec = spec_on("l4-spot", 1)  # retries: 2, so try 3 is the last
    first = render(kpo(spec), 1)
    assert first["spec"]["nodeSelector"]["cloud.google.com/gke-nodepool"] == "l4-spot"
    last_op = kpo(spec)
    last = render(last_op, 3)
    assert last["spec"]["nodeSelector"]["cloud.google.com/gke-nodepool"] == "l4"
    assert all(t["key"] != "cloud.google.com/gke-spot" for t in last["spec"]["tolerations"])
    assert last_op.pool == "mlops-gpu-l4"  # the Airflow pool does not change
    kubernetes_validate.validate(last, K8S_VERSION, strict=True)


def test_pool_chosen_in_the_trigger_form_places_the_pod(kpo):
    """l4 -> l4-spot for one run (same Airflow pool, vetted by check_request): the pod goes to spot nodes."""
    spec = spec_on("l4", 1)
    pod = render(kpo(spec), 1, {"compute_pool": "l4-spot"})
    assert pod["spec"]["nodeSelector"]["cloud.google.com/gke-spot"] == "true"
    assert any(t["key"] == "cloud.google.com/gke-spot" for t in pod["spec"]["tolerations"])
    assert pod["metadata"]["labels"]["mlops.airflow/pool"] == "l4-spot"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    untouched = render(kpo(spec), 1, {"compute_pool": "l4"})
    assert untouched["spec"]["nodeSelector"]["cloud.google.com/gke-nodepool"] == "l4"


def test_backend_override_builds_pod_operators_without_editing_specs(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "kubernetes")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    for dag_id in ("churn__train", "demand__train"):
        assert type(bag.dags[dag_id].get_task("train")).__name__ == "KubernetesTrainOperator"
        assert "compute:kubernetes" in bag.dags[dag_id].tags


def test_gke_backend_without_a_cluster_is_a_visible_broken_dag(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_COMPUTE_BACKEND", "gke")
    for name in ("MLOPS_GKE_PROJECT", "MLOPS_GKE_LOCATION", "MLOPS_GKE_CLUSTER"):
        monkeypatch.delenv(name, raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    broken = bag.dags["churn__train"]
    assert "broken-spec" in broken.tags and "MLOPS_GKE_CLUSTER" in broken.doc_md
    monkeypatch.setenv("MLOPS_GKE_PROJECT", "p")
    monkeypatch.setenv("MLOPS_GKE_LOCATION", "europe-west4")
    monkeypatch.setenv("MLOPS_GKE_CLUSTER", "ml")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    op = bag.dags["churn__train"].get_task("train")
    assert type(op).__name__ == "GKETrainOperator" and op.cluster_name == "ml"


@pytest.fixture
def accepting_api(tmp_path):
    """A kubeconfig for an HTTP endpoint that answers every read of a pod with `server.pod` and accepts
    every write: cleanup's reads, patch and delete succeed at once, so the classification is under test."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Accept(BaseHTTPRequestHandler):
        def _ok(self):
            body = json.dumps(server.pod if "/pods/" in self.path and not self.path.endswith("/log")
                              else {"kind": "Status", "status": "Success", "metadata": {}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = do_DELETE = do_POST = _ok

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    server.pod = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {"token": "x"}}],
    }))
    yield str(path), server
    server.shutdown()


@pytest.mark.parametrize("state,expected", [
    ({"terminated": {"reason": "OOMKilled", "exit_code": 137}}, "OOMKilled at its memory limit 2Gi"),
    ({"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}, "cannot pull its image"),
])
def test_cleanup_replaces_the_generic_failure_with_the_reason(accepting_api, state, expected):
    from airflow.sdk.exceptions import AirflowFailException
    from kubernetes.client import models as k8s

    config, server = accepting_api
    op = _operator(spec_on("cpu", 0), "kubernetes", config_file=config)
    pod = op.build_pod_request_obj(None)
    remote = k8s.V1Pod(metadata=pod.metadata, spec=pod.spec, status=k8s.V1PodStatus(
        phase="Failed" if "terminated" in state else "Pending",
        container_statuses=[k8s.V1ContainerStatus(
            name="base", image="x", image_id="", ready=False, restart_count=0,
            state=k8s.V1ContainerState(
                terminated=k8s.V1ContainerStateTerminated(**state["terminated"]) if "terminated" in state else None,
                waiting=k8s.V1ContainerStateWaiting(**state["waiting"]) if "waiting" in state else None))]))
    server.pod = ApiClient().sanitize_for_serialization(remote)
    with pytest.raises(AirflowFailException, match=expected):
        op.cleanup(pod, remote)
