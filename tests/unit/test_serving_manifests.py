"""The kubernetes serving backend's objects, rendered from specs: valid Kubernetes (kubernetes-validate,
strict), and carrying what the issue of safe rollouts needs (probes, no unavailable pod during an update,
non-root, requests, placement on the spec's pool, a disruption budget, an autoscaler within bounds)."""

from __future__ import annotations

import kubernetes_validate
import pytest
from test_serving import churn_with

from mlops.compute import catalogue_path, load_catalogue
from mlops.orphans import find_orphans
from mlops.serving import manifests
from mlops.settings import get_settings
from mlops.spec import parse_spec

K8S_VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]


def spec_with(**serving):
    return parse_spec(churn_with({"backend": "kubernetes", **serving}))


def render(spec, version="7", rollout="0123456789ab"):
    settings = get_settings()
    return manifests.rollout_manifests(spec, settings, load_catalogue(catalogue_path(settings.compute_dir)),
                                       "mlops", version, rollout)


SPECS = {
    "cpu": spec_with(replicas=2),
    "gpu-autoscaled": spec_with(replicas=2, pool="l4", gpus=1, resources={"cpu": "4", "memory": "16Gi"},
                                autoscaling={"min_replicas": 2, "max_replicas": 6, "target_cpu_percent": 60}),
}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("case", sorted(SPECS))
def test_rendered_objects_are_valid_kubernetes(case, version):
    objects = render(SPECS[case])
    assert [o["kind"] for o in objects][:4] == ["Service", "Service", "Deployment", "PodDisruptionBudget"]
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_deployment_is_safe_to_roll():
    deployment = next(o for o in render(SPECS["cpu"]) if o["kind"] == "Deployment")
    spec = deployment["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0} and spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
    server = pod["containers"][0]
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert server["livenessProbe"]["httpGet"]["path"] == server["startupProbe"]["httpGet"]["path"] == "/ping"
    # the startup probe gives the model the spec's ready_seconds to load
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= SPECS["cpu"].serving.timeouts.ready_seconds
    assert server["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "cpu"}
    fetch = pod["initContainers"][0]
    assert fetch["command"][-3:] == ["churn", "7", manifests.MODEL_DIR]
    assert {e["name"] for e in fetch["env"]} >= {"MLFLOW_TRACKING_URI"}
    assert all("value" not in e for e in fetch["env"] if e["name"].startswith("MLFLOW_TRACKING"))  # by reference
    # grace: the server's drain and pre-stop fit in it
    assert pod["terminationGracePeriodSeconds"] > SPECS["cpu"].serving.timeouts.drain_seconds


def test_gpu_serving_lands_on_the_gpu_pool_and_scales_within_bounds():
    objects = render(SPECS["gpu-autoscaled"])
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1" and pod["nodeSelector"][
        "cloud.google.com/gke-nodepool"] == "l4"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert "CUDA_VISIBLE_DEVICES" not in {e["name"] for e in server["env"]}
    hpa = objects[-1]
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "churn-v7-01234567"


def test_only_traffic_pods_are_behind_the_model_service_and_the_candidate_has_its_own():
    spec = SPECS["cpu"]
    service = manifests.model_service(spec, "mlops")
    assert service["spec"]["selector"][manifests.LABEL_TRAFFIC] == "true"
    settings = get_settings()
    catalogue = load_catalogue(catalogue_path(settings.compute_dir))
    candidate = manifests.deployment(spec, settings, catalogue, "mlops", "7", "abc", traffic=False, replicas=1)
    labels = candidate["spec"]["template"]["metadata"]["labels"]
    assert labels[manifests.LABEL_TRAFFIC] == "false"
    own = manifests.version_service(spec, "mlops", "7", "abc")["spec"]["selector"]
    assert all(labels[k] == v for k, v in own.items())


def test_model_names_become_dns_labels():
    assert manifests.dns_name("churn_form") == "churn-form" and manifests.dns_name("9lives") == "m-9lives"
    long = manifests.version_name(parse_spec({**churn_with(None), "name": "a" * 60}), "123", "deadbeefcafe")
    assert len(long) <= 63 and long.endswith("-v123-deadbeef")


def test_autoscaling_bounds_and_backend_are_checked():
    from mlops.spec import SpecError

    with pytest.raises(SpecError, match="autoscaling needs a cluster backend"):
        parse_spec(churn_with({"autoscaling": {"min_replicas": 1, "max_replicas": 2}}))
    with pytest.raises(SpecError, match="max_replicas"):
        spec_with(autoscaling={"min_replicas": 3, "max_replicas": 2})
    with pytest.raises(SpecError, match="within autoscaling's bounds"):
        spec_with(replicas=5, autoscaling={"min_replicas": 1, "max_replicas": 2})


def test_the_orphan_sweep_leaves_serving_pods_alone():
    pod = {"metadata": {"name": "churn-v7-01234567-abc-xyz", "namespace": "mlops",
                        "creationTimestamp": "2020-01-01T00:00:00Z",
                        "labels": {"app.kubernetes.io/managed-by": "mlops-airflow"},
                        "ownerReferences": [{"kind": "Deployment", "name": "churn-v7", "uid": "u",
                                             "controller": True}]}}
    assert find_orphans([pod], lambda key: None) == []
    assert "app.kubernetes.io/managed-by" not in manifests.model_labels(SPECS["cpu"])


def test_the_inference_service_is_valid_against_kserves_schema_and_names_the_platforms_runtime():
    import json

    import jsonschema

    from helpers import ROOT
    from mlops.serving import kserve

    spec = parse_spec(churn_with({"backend": "kserve", "replicas": 2, "pool": "l4", "gpus": 1,
                                  "autoscaling": {"min_replicas": 2, "max_replicas": 5}}))
    settings = get_settings()
    catalogue = load_catalogue(catalogue_path(settings.compute_dir))
    stable = kserve.predictor(spec, settings, catalogue, "3", "abcdef123456", "gs://bucket/m/3", serving=True)
    candidate = kserve.predictor(spec, settings, catalogue, "4", "0123456789ab", "gs://bucket/m/4", serving=False)
    isvc = kserve.inference_service(spec, "mlops", stable, candidate, 10)
    schema = json.loads((ROOT / "tests" / "data" / "crds" / "inferenceservice-v1beta1.json").read_text())
    jsonschema.validate(isvc, schema)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["spec"]["canary"] == [{"predictor": candidate, "trafficPercent": 10}]
    model = stable["model"]
    assert (model["modelFormat"], model["protocolVersion"], model["runtime"]) == (
        {"name": "mlflow"}, "v2", "mlops-mlflow")
    assert (stable["minReplicas"], stable["maxReplicas"], candidate["minReplicas"]) == (2, 5, 1)
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1" and stable["nodeSelector"][
        "cloud.google.com/gke-nodepool"] == "l4"
    assert {"name": "MLSERVER_MODEL_VERSION", "value": "3"} in model["env"]
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["model"]["storageURI"] = "gs://typo"
    with pytest.raises(jsonschema.ValidationError, match="storageURI"):
        jsonschema.validate(broken, schema)


def test_the_cli_prints_what_a_deploy_applies(tmp_path, monkeypatch, capsys):
    import yaml

    from helpers import MODELS
    from mlops.serving.cli import main

    data = yaml.safe_load((MODELS / "churn.yaml").read_text())
    data["serving"] = {"backend": "kubernetes", "replicas": 2}
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "churn.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    assert main(["manifests", "churn", "v3"]) == 0
    out = capsys.readouterr().out
    objects = list(yaml.safe_load_all(out))
    assert [o["kind"] for o in objects] == ["Service", "Service", "Deployment", "PodDisruptionBudget"]
    assert "&id" not in out and objects[2]["spec"]["replicas"] == 2
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("status, words", [
    ({"containerStatuses": [{"name": "server", "image": "mlops-serving:1", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]},
     ["cannot pull its image mlops-serving:1", "MLOPS_SERVING_IMAGE"]),
    ({"containerStatuses": [{"name": "server", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                             "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]},
     ["OOMKilled at its memory limit 1Gi", "raise serving.resources.memory"]),
    ({"containerStatuses": [{"name": "server", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                             "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
     ["crashed at start (exit code 1, restarted 2 time(s))", "| boom"]),
    ({"initContainerStatuses": [{"name": "fetch-model", "restartCount": 2,
                                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                 "lastState": {"terminated": {"exitCode": 1}}}]},
     ["container 'fetch-model'", "could not fetch the model"]),
])
def test_a_pod_that_will_not_become_ready_says_why(status, words):
    from mlops.serving.k8s import KubernetesBackend

    backend = object.__new__(KubernetesBackend)  # the verdict needs no cluster
    backend.serving = SPECS["cpu"].serving
    backend._log_tail = lambda pod, container: ["Traceback ...", "boom"]
    problem = backend.pod_problem({"metadata": {"name": "churn-v7-abc"}, "status": status})
    for w in words:
        assert w in problem, (w, problem)


def test_one_failed_start_and_a_recovered_container_are_not_judged():
    from mlops.serving.k8s import KubernetesBackend

    backend = object.__new__(KubernetesBackend)
    backend.serving = SPECS["cpu"].serving
    once = {"name": "server", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1}}}
    recovered = {**once, "restartCount": 3, "state": {"running": {"startedAt": "2026-12-03T07:00:00Z"}}}
    for cs in (once, recovered):
        assert backend.pod_problem({"metadata": {"name": "p"}, "status": {"containerStatuses": [cs]}}) is None


def test_a_pod_that_is_starting_is_not_judged():
    from mlops.serving.k8s import KubernetesBackend

    backend = object.__new__(KubernetesBackend)
    backend.serving = SPECS["cpu"].serving
    pending = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]}}
    assert backend.pod_problem(pending) is None  # GPU nodes scale up slowly: the timeout says it
    assert "could not be scheduled in pool 'cpu': 0/3 nodes" in backend._scheduling([pending])


def test_kserve_reads_proxied_artifacts_from_the_tracking_servers_destination():
    from mlops.serving.kserve import storage_uri

    assert storage_uri("mlflow-artifacts:/1/abc/artifacts", "gs://b/mlflow/") == "gs://b/mlflow/1/abc/artifacts"
    assert storage_uri("mlflow-artifacts://mlflow:5000/1/abc", "gs://b/mlflow") == "gs://b/mlflow/1/abc"
    assert storage_uri("gs://x/models/m-1/artifacts", None) == "gs://x/models/m-1/artifacts"
    with pytest.raises(RuntimeError, match="set MLOPS_KSERVE_ARTIFACT_ROOT"):
        storage_uri("mlflow-artifacts:/1/abc", None)
