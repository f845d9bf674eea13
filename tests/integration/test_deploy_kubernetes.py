"""Online serving on the kubernetes backend, end to end through `churn__deploy` (`dag.test()`), against the
emulated Kubernetes API: the deploy tasks apply the rendered Deployments, Services and budgets through the
cncf-kubernetes hook's client, the emulator's controllers run the Deployments' pods (the init container
fetches the version from the real MLflow store, the server container is MLflow's scoring server), its
prober runs their startup, readiness and liveness probes, and clients call the model's Service through the
API server's service proxy, as a client outside the cluster network would.

The same rollout as the local backend's with a client loop that must see no failed request, and a bad
candidate (a crash at start) rolled back with nothing of it left behind while the stable version serves."""

from __future__ import annotations

import base64
import json
import sys

import pytest

import churn_variants
from deploy_helpers import STEPS, ClientLoop, _alias
from deploy_helpers import deploy as run_deploy
from helpers import ROOT
from k8s_e2e import NODES

SERVING = {"backend": "kubernetes", "replicas": 2, "autoscaling": {"min_replicas": 2, "max_replicas": 4},
           "timeouts": {"ready_seconds": 90, "request_seconds": 5, "drain_seconds": 3},
           "smoke": {"rows": 40, "tolerance": 1e-6}, "canary": {"requests": 40},
           "guardrails": {"max_error_rate": 0.0, "max_p99_ms": 1500, "max_psi": 0.5, "max_disagreement": 0.2}}
VERSIONS = {"good": "", "better": "", "crash": "crash"}
NS = "mlops"


@pytest.fixture(scope="module")
def cluster_served(airflow_db, sample_data_root, tmp_path_factory):
    """churn served on the kubernetes backend, three trained versions, the emulated cluster with the
    tracking Secret and Airflow's kubernetes connection; the cluster (and every pod process) stops at
    the end."""
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes import client

    from k8s_emulator import Cluster
    from mlops.settings import get_settings
    from mlops.spec import load_spec
    from mlops.train import RunContext, run_training

    tmp = tmp_path_factory.mktemp("deploy-k8s")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(tmp / "platform"))
        mp.setenv("MLOPS_DATA_ROOT", str(sample_data_root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        churn_variants.serving(tmp, mp, SERVING)
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
            uri = base64.b64encode(settings.tracking_uri.encode()).decode()
            cluster.core_v1().create_namespaced_secret(NS, client.V1Secret(
                metadata=client.V1ObjectMeta(name="mlops-tracking"), data={"MLFLOW_TRACKING_URI": uri}))
            mp.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(cluster.kubeconfig), "in_cluster": False, "namespace": NS}}))
            bag = DagBag(dag_folder=str(ROOT / "dags"))
            assert "churn__deploy" in bag.dags, bag.import_errors
            yield {"bag": bag, "settings": settings, "spec": spec, "versions": versions, "cluster": cluster,
                   "url": f"{cluster.url}/api/v1/namespaces/{NS}/services/churn-serving:http/proxy",
                   "used": set()}
        started = cluster.agent.started
        assert started, "no container process ran"
        for proc in started:  # killed by the cluster's stop: give the kernel a moment to reap them
            if proc.proc is not None:
                proc.proc.wait(timeout=10)
        left = [proc.argv[:3] for proc in started if proc.alive]
        assert not left, f"pod processes left running after the cluster stopped: {left}"


def deploy(served, version: str):
    """A deploy run; the API permissions its tasks used (and the client loop's, a subset) are collected."""
    authorized = served["cluster"].server.authorized
    authorized.clear()
    try:
        return run_deploy(served, version)
    finally:
        served["used"].update(authorized)


def objects(cluster) -> dict[str, list[str]]:
    """What the platform has in the namespace, by kind (the training Secret aside)."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    return {
        "deployments": sorted(d.metadata.name for d in apps.list_namespaced_deployment(NS).items),
        "services": sorted(s.metadata.name for s in core.list_namespaced_service(NS).items),
        "budgets": sorted(b.metadata.name for b in client.PolicyV1Api(api).list_namespaced_pod_disruption_budget(
            NS).items),
        # the pods that count: a pod the switch's rolling update replaced may still be draining
        "pods": sorted(p.metadata.labels["mlops.airflow/version"] for p in core.list_namespaced_pod(NS).items
                       if p.metadata.deletion_timestamp is None),
    }


def _row(served) -> bytes:
    from mlops.serving import endpoint
    from mlops.serving.rollout import smoke_sample

    sample = smoke_sample(served["settings"], served["spec"], served["versions"]["good"])
    return endpoint.frame_body(sample[list(served["spec"].dataset.features)].head(1))


def test_first_deploy_then_a_rollout_with_no_failed_request(cluster_served):
    from mlops.audit import AuditLog
    from mlops.serving import endpoint
    from mlops.serving.records import RolloutLog

    served, cluster, v = cluster_served, cluster_served["cluster"], cluster_served["versions"]
    dr, states = deploy(served, v["good"])
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    first = objects(cluster)
    assert len(first["deployments"]) == 1 and first["deployments"][0].startswith(f"churn-v{v['good']}-")
    assert first["services"] == sorted(["churn-serving", first["deployments"][0]])
    assert first["budgets"] == first["deployments"] and first["pods"] == [v["good"]] * 2
    answer = endpoint.invoke(endpoint.session(), served["url"], _row(served), 10)
    assert answer.ok and answer.version == v["good"], answer

    with ClientLoop(served["url"], _row(served)) as loop:
        dr, states = deploy(served, v["better"])
    assert states == {**dict.fromkeys(STEPS, "success"), "roll_back": "skipped"}, states
    assert loop.failures == [], loop.failures[:5]
    assert loop.answers[v["good"]] > 0 and loop.answers[v["better"]] > 0, loop.answers
    after = objects(cluster)
    assert len(after["deployments"]) == 1 and after["deployments"][0].startswith(f"churn-v{v['better']}-")
    assert after["pods"] == [v["better"]] * 2 and after["budgets"] == after["deployments"]
    assert _alias(served, "deployed") == v["better"] and _alias(served, "previous-deployed") == v["good"]
    rollout = RolloutLog(served["settings"].audit_root, "churn").latest()
    assert rollout.backend == "kubernetes" and rollout.verdict == "deployed"
    assert rollout.endpoint == "http://churn-serving.mlops.svc.cluster.local"
    assert rollout.bake["requests"] == 40 and set(rollout.bake["versions_answered"]) == {v["good"], v["better"]}
    assert [r.action for r in AuditLog(served["settings"].audit_root, "churn").records()][-2:] == ["deploy", "deploy"]


def test_a_candidate_that_crashes_is_rolled_back_and_leaves_nothing(cluster_served, capfd):
    served, cluster, v = cluster_served, cluster_served["cluster"], cluster_served["versions"]
    before = objects(cluster)
    with ClientLoop(served["url"], _row(served)) as loop:
        dr, states = deploy(served, v["crash"])
    assert states["start_candidate"] == "failed" and states["roll_back"] == "success", states
    out = capfd.readouterr().out
    assert f"the rollout of v{v['crash']} failed at start" in out
    assert "container 'server' of pod churn-v" in out and "crashed at start" in out
    assert "this model cannot load in the serving environment" in out  # the server's own last log lines
    assert loop.failures == [] and set(loop.answers) == {v["better"]}, (loop.failures[:5], loop.answers)
    assert objects(cluster) == before
    assert _alias(served, "deployed") == v["better"]


def test_the_serving_role_grants_exactly_what_the_deploys_used(cluster_served):
    """deploy/k8s/rbac.yaml's mlops-serving Role against every API request the rollouts above made (the
    emulator records each request's RBAC attributes): nothing used is missing, nothing granted is unused."""
    import yaml

    from k8s_emulator.rbac import granted

    assert cluster_served["used"], "run with the rollout tests above"
    role = next(d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "rbac.yaml").read_text())
                if d and d["kind"] == "Role" and d["metadata"]["name"] == "mlops-serving")
    used = cluster_served["used"]
    rules = {g for g in granted(role["rules"]) if g[0] != "serving.kserve.io"}  # the kserve backend's: its test
    assert used <= rules, sorted(used - rules)
    # granted for a retried switch, which re-applies what its first try created, and the kserve backend's
    # readiness question to the model (GET through the service proxy)
    assert rules - used == {("policy", "poddisruptionbudgets", "patch"),
                            ("autoscaling", "horizontalpodautoscalers", "patch"),
                            ("", "services/proxy", "get")}, sorted(used)
