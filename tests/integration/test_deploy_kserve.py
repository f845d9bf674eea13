"""Online serving on the kserve backend, end to end through `churn__deploy` (`dag.test()`), in both of KServe's
modes (Standard with `spec.canary`, Serverless with canaryTrafficPercent over revisions), against the emulated
Kubernetes API with its KServe controller (tests/k8s_emulator/kserve.py): the deploy tasks write one
InferenceService through the hook's client, the controller builds each predictor variant's Deployment from
deploy/kserve/runtime.yaml's ClusterServingRuntime (MLServer with its MLflow runtime, run from
.venv-mlserver) and a storage initializer, and clients call the model over the Open Inference Protocol (v2) through
the API server's service proxy.

The rollout with a client loop that must see no failed request and both versions answer (the canary takes its
share of live traffic during the bake), and a candidate that crashes at start rolled back with nothing of it
left while the stable version serves."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

import churn_variants
from deploy_helpers import STEPS, ClientLoop, _alias
from deploy_helpers import deploy as run_deploy
from helpers import ROOT
from k8s_e2e import NODES

# One replica: each MLServer start costs seconds of CPU on a 2-core CI machine; scaling to the spec's
# replicas is the kubernetes backend test's (test_deploy_kubernetes.py) and the manifests' (unit) concern.
SERVING = {"backend": "kserve", "replicas": 1,
           "timeouts": {"ready_seconds": 120, "request_seconds": 5, "drain_seconds": 3},
           "smoke": {"rows": 40, "tolerance": 1e-6}, "canary": {"requests": 40, "traffic_percent": 30},
           "guardrails": {"max_error_rate": 0.0, "max_p99_ms": 1500, "max_psi": 0.5, "max_disagreement": 0.2}}
VERSIONS = {"good": "", "better": "", "crash": "crash"}
NS = "mlops"
MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
# The storage initializer of the emulated cluster: KServe's copies gs:// and s3:// URIs; this one the
# file:// URIs of the test's local MLflow store, with the same arguments (URI, target folder).
COPY = ("import shutil, sys; from urllib.parse import urlparse; "
        "shutil.copytree(urlparse(sys.argv[1]).path, sys.argv[2], dirs_exist_ok=True)")


def runtime() -> dict:
    """deploy/kserve/runtime.yaml as shipped, with the host's MLServer standing in for the image."""
    shipped = yaml.safe_load((ROOT / "deploy" / "kserve" / "runtime.yaml").read_text())
    container = shipped["spec"]["containers"][0]
    container["command"] = [str(MLSERVER)]
    container["env"].append({"name": "PYTHONPATH", "value": f"{ROOT / 'include'}{os.pathsep}{ROOT / 'tests'}"})
    return shipped


@pytest.fixture(scope="module", params=["Standard", "Serverless"])
def kserve_served(request, airflow_db, sample_data_root, tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes import client, config

    from k8s_emulator import Cluster
    from mlops.settings import get_settings
    from mlops.spec import load_spec
    from mlops.train import RunContext, run_training

    if not MLSERVER.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{MLSERVER} is missing: `make install` builds .venv-mlserver")
        pytest.skip(f"{MLSERVER} is missing: run `make install` (it builds .venv-mlserver)")
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"deploy-kserve-{mode.lower()}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(tmp / "platform"))
        mp.setenv("MLOPS_DATA_ROOT", str(sample_data_root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        churn_variants.serving(tmp, mp, {**SERVING, "kserve_mode": mode})
        settings = get_settings()
        spec = load_spec(tmp / "models" / "churn.yaml", settings.expectations_dir)
        versions = {}
        for i, (name, fault) in enumerate(VERSIONS.items()):
            ctx = RunContext("churn__train", f"train-{name}", None, None, f"2026-01-{15 + i}T00:00:00+00:00", 1,
                             None, None, None)
            params = {churn_variants.SERVE_FAULT: fault, "C": 1.0 - 0.1 * i}
            versions[name] = run_training(spec, ctx, params, settings)["model_version"]
        with Cluster(tmp / "kubeconfig", nodes=NODES, executables={"python": sys.executable},
                     namespace=NS) as cluster:
            api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
            custom = client.CustomObjectsApi(api)
            custom.create_cluster_custom_object("serving.kserve.io", "v1alpha1", "clusterservingruntimes", runtime())
            custom.create_cluster_custom_object("serving.kserve.io", "v1alpha1", "clusterstoragecontainers", {
                "apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterStorageContainer",
                "metadata": {"name": "local-files"},
                "spec": {"supportedUriFormats": [{"prefix": "file://"}],
                         "container": {"name": "storage-initializer", "image": "emulator/copy",
                                       "command": [sys.executable, "-c", COPY]}}})
            uri = base64.b64encode(settings.tracking_uri.encode()).decode()
            cluster.core_v1().create_namespaced_secret(NS, client.V1Secret(
                metadata=client.V1ObjectMeta(name="mlops-tracking"), data={"MLFLOW_TRACKING_URI": uri}))
            mp.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(cluster.kubeconfig), "in_cluster": False, "namespace": NS}}))
            bag = DagBag(dag_folder=str(ROOT / "dags"))
            assert "churn__deploy" in bag.dags, bag.import_errors
            yield {"bag": bag, "settings": settings, "spec": spec, "versions": versions, "cluster": cluster,
                   "mode": mode,
                   "custom": custom, "url": f"{cluster.url}/api/v1/namespaces/{NS}/services/churn:http/proxy",
                   "used": set()}
        started = cluster.agent.started
        assert started, "no container process ran"
        for proc in started:  # killed by the cluster's stop: give the kernel a moment to reap them
            if proc.proc is not None:
                proc.proc.wait(timeout=10)
        left = [proc.argv[:3] for proc in started if proc.alive]
        assert not left, f"pod processes left running after the cluster stopped: {left}"


def deploy(served, version: str):
    authorized = served["cluster"].server.authorized
    authorized.clear()
    try:
        return run_deploy(served, version)
    finally:
        served["used"].update(authorized)


def _protocol():
    from mlops.serving import endpoint

    return endpoint.V2Protocol("churn")


def _row(served) -> bytes:
    from mlops.serving.rollout import smoke_sample

    sample = smoke_sample(served["settings"], served["spec"], served["versions"]["good"])
    return _protocol().body(sample[list(served["spec"].dataset.features)].head(1))


def isvc(served) -> dict:
    return served["custom"].get_namespaced_custom_object("serving.kserve.io", "v1beta1", NS, "inferenceservices",
                                                         "churn")


def state(cluster) -> dict[str, list[str]]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    pods = [p for p in core.list_namespaced_pod(NS).items if p.metadata.deletion_timestamp is None]
    return {"deployments": sorted(d.metadata.name for d in apps.list_namespaced_deployment(NS).items),
            "pods": sorted(p.metadata.labels.get("mlops.airflow/version", "?") for p in pods),
            "rollouts": sorted({p.metadata.labels.get("mlops.airflow/rollout", "?") for p in pods})}


def test_first_deploy_then_a_canary_rollout_with_no_failed_request(kserve_served):
    from mlops.serving.records import RolloutLog

    served, cluster, v = kserve_served, kserve_served["cluster"], kserve_served["versions"]
    dr, states = deploy(served, v["good"])
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    first = isvc(served)
    predictor = first["spec"]["predictor"]
    assert first["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == served["mode"]
    assert predictor["model"]["modelFormat"] == {"name": "mlflow"} and predictor["model"]["protocolVersion"] == "v2"
    assert predictor["model"]["storageUri"].startswith("file://") and "canary" not in first["spec"]
    assert predictor["minReplicas"] == 1 and state(cluster)["pods"] == [v["good"]]
    answer = _protocol().invoke(__import__("requests").Session(), served["url"], _row(served), 10)
    assert answer.ok and answer.version == v["good"], answer

    with ClientLoop(served["url"], _row(served), _protocol()) as loop:
        dr, states = deploy(served, v["better"])
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    assert loop.failures == [], loop.failures[:5]
    # the client loop goes through the model's route: the canary's share of live traffic reached it
    assert loop.answers[v["good"]] > 0 and loop.answers[v["better"]] > 0, loop.answers
    after = isvc(served)
    assert after["spec"]["predictor"]["labels"]["mlops.airflow/version"] == v["better"]
    assert "canary" not in after["spec"] and "canaryTrafficPercent" not in after["spec"]["predictor"]
    if served["mode"] == "Standard":
        serving = [f"churn-{after['spec']['predictor']['name']}-predictor"]
    else:  # the candidate's revision took all the traffic and is the rolled-out one
        component = after["status"]["components"]["predictor"]
        assert component["traffic"] == [{"revisionName": component["latestRolledoutRevision"], "percent": 100,
                                         "latestRevision": True}]
        serving = [f"{component['latestRolledoutRevision']}-deployment"]
    assert {k: v for k, v in state(cluster).items() if k != "rollouts"} == {"deployments": serving,
                                                                             "pods": [v["better"]]}
    assert _alias(served, "deployed") == v["better"] and _alias(served, "previous-deployed") == v["good"]
    rollout = RolloutLog(served["settings"].audit_root, "churn").latest()
    assert rollout.backend == "kserve" and rollout.verdict == "deployed"
    assert rollout.endpoint == "http://churn.mlops.svc.cluster.local"
    assert set(rollout.bake["versions_answered"]) == {v["good"], v["better"]}


def test_a_candidate_that_crashes_is_rolled_back_and_leaves_nothing(kserve_served, capfd):
    served, cluster, v = kserve_served, kserve_served["cluster"], kserve_served["versions"]
    before, spec_before = state(cluster), isvc(served)["spec"]
    with ClientLoop(served["url"], _row(served), _protocol()) as loop:
        dr, states = deploy(served, v["crash"])
    assert states["start_candidate"] == "failed" and states["roll_back"] == "success", states
    out = capfd.readouterr().out
    assert f"the rollout of v{v['crash']} failed at start" in out
    assert "container 'kserve-container' of pod churn-" in out and "crashed at start" in out
    assert "this model cannot load in the serving environment" in out
    assert loop.failures == [] and set(loop.answers) == {v["better"]}, (loop.failures[:5], loop.answers)
    after = state(cluster)
    assert after["pods"] == before["pods"] and after["rollouts"] == before["rollouts"]  # nothing of v3 left
    assert isvc(served)["spec"] == spec_before
    if served["mode"] == "Standard":
        assert after == before  # the canary variant came and went; the primary's pods never changed
    # Serverless: re-applying the serving predictor made a new revision of it (Knative's way), which took the
    # traffic once ready; the client loop above saw no failed request through that change either
    assert _alias(served, "deployed") == v["better"]


def test_a_rollback_after_the_switch_puts_the_previous_version_back_without_a_failed_request(kserve_served):
    """What roll_back does when the switch was done (record_deployment failed): the serving version of this
    rollout gives way to the one it replaced, brought back ready before it takes the traffic."""
    from kubernetes import config

    from mlops.serving import rollout as steps
    from mlops.serving.records import RolloutLog

    served, v = kserve_served, kserve_served["versions"]
    done = [r for r in RolloutLog(served["settings"].audit_root, "churn").all() if r.verdict == "deployed"]
    last = done[-1]
    assert last.to_version == v["better"] and last.from_version == v["good"]
    previous = steps.previous_deploy(served["settings"], served["spec"], last)
    assert previous == (v["good"], done[-2].id)
    api = config.new_client_from_config(config_file=str(served["cluster"].kubeconfig))
    backend = steps.backend_for(served["settings"], served["spec"], api)
    with ClientLoop(served["url"], _row(served), _protocol()) as loop:
        backend.abort(last.id, previous)
    assert loop.failures == [], loop.failures[:5]
    assert backend.serving_versions() == [v["good"]] and state(served["cluster"])["pods"] == [v["good"]]


def test_the_serving_role_covers_what_the_kserve_deploys_used(kserve_served):
    from k8s_emulator.rbac import granted

    assert kserve_served["used"], "run with the rollout tests above"
    role = next(d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "rbac.yaml").read_text())
                if d and d["kind"] == "Role" and d["metadata"]["name"] == "mlops-serving")
    used, rules = kserve_served["used"], granted(role["rules"])
    assert used <= rules, sorted(used - rules)
    # delete: only a failed first deploy removes the InferenceService (here the failed rollout was a canary)
    assert {g for g in rules if g[0] == "serving.kserve.io"} - used == {
        ("serving.kserve.io", "inferenceservices", "delete")}


def test_the_shipped_runtime_is_a_valid_cluster_serving_runtime():
    import jsonschema

    schema = json.loads(Path(ROOT / "tests" / "data" / "crds" / "clusterservingruntime-v1alpha1.json").read_text())
    jsonschema.validate(yaml.safe_load((ROOT / "deploy" / "kserve" / "runtime.yaml").read_text()), schema)
