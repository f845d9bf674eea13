"""The kubernetes backend's objects, rendered from the spec as plain dicts (what `kubectl get -o json`
shows), so they are validated and reviewed without a cluster.

Per model, one Service (`<model>-serving`) that clients call: it routes to the pods labelled
`mlops.airflow/traffic: "true"`. Per rollout, one Deployment, one Service of its own (the smoke test
and the bake reach the candidate through it, before it takes traffic) and a PodDisruptionBudget; with
`serving.autoscaling`, a HorizontalPodAutoscaler on the Deployment once it serves. Each pod fetches the
version's MLflow model into an emptyDir in an init container (`python -m mlops.serving.fetch`) and
serves it with MLflow's scoring server (`python -m mlops.serving.worker`), non-root, probed on /ping
(startup, liveness) and /health (readiness).

Serving pods are labelled `app.kubernetes.io/part-of`, not `managed-by`: the maintenance DAG's orphan
sweep, which deletes `managed-by` training pods whose task ended, must never touch them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mlops.compute import Catalogue
from mlops.podplan import LABEL_MODEL, RUN_AS, SECRET_ENV, placement
from mlops.settings import Settings
from mlops.spec import ModelSpec

SERVER = "server"
FETCH = "fetch-model"
PORT = 8080
MODEL_DIR = "/mnt/models"
PART_OF = "mlops-airflow"
COMPONENT = "model-server"
LABEL_VERSION = "mlops.airflow/version"
LABEL_ROLLOUT = "mlops.airflow/rollout"
LABEL_TRAFFIC = "mlops.airflow/traffic"
PRESTOP_SECONDS = 2


def dns_name(model: str) -> str:
    """A model name as a DNS-1035 label part (lower case, dashes), short enough for a suffix."""
    name = re.sub(r"[^a-z0-9-]", "-", model.lower()).strip("-")[:40].rstrip("-")
    return name if name[:1].isalpha() else f"m-{name}"


def service_name(spec: ModelSpec) -> str:
    return f"{dns_name(spec.name)}-serving"


def version_name(spec: ModelSpec, version: str, rollout_id: str) -> str:
    """The rollout's Deployment, Service and budget: one per rollout, so a re-deploy of a version never
    collides with the objects that serve it."""
    return f"{dns_name(spec.name)}-v{version}-{rollout_id[:8]}"


def model_labels(spec: ModelSpec) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": COMPONENT, LABEL_MODEL: spec.name}


def model_selector(spec: ModelSpec) -> str:
    return ",".join(f"{k}={v}" for k, v in model_labels(spec).items())


def rollout_labels(spec: ModelSpec, version: str, rollout_id: str) -> dict[str, str]:
    return {**model_labels(spec), LABEL_VERSION: version, LABEL_ROLLOUT: rollout_id}


def model_service(spec: ModelSpec, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service_name(spec), "namespace": namespace, "labels": model_labels(spec)},
            "spec": {"type": "ClusterIP", "selector": {**model_labels(spec), LABEL_TRAFFIC: "true"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def version_service(spec: ModelSpec, namespace: str, version: str, rollout_id: str) -> dict[str, Any]:
    labels = rollout_labels(spec, version, rollout_id)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": version_name(spec, version, rollout_id), "namespace": namespace, "labels": labels},
            "spec": {"type": "ClusterIP", "selector": labels,
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def disruption_budget(spec: ModelSpec, namespace: str, version: str, rollout_id: str) -> dict[str, Any]:
    """At most one pod of the version down at a time for voluntary disruptions (node drains, upgrades).
    With one replica that still lets a drain through: redundancy needs `replicas: 2` or more."""
    labels = rollout_labels(spec, version, rollout_id)
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": version_name(spec, version, rollout_id), "namespace": namespace, "labels": labels},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}


def autoscaler(spec: ModelSpec, namespace: str, version: str, rollout_id: str) -> dict[str, Any] | None:
    assert spec.serving is not None
    scaling = spec.serving.autoscaling
    if scaling is None:
        return None
    name = version_name(spec, version, rollout_id)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace, "labels": rollout_labels(spec, version, rollout_id)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": scaling.target_cpu_percent}}}]}}


def resources(spec: ModelSpec, catalogue: Catalogue) -> dict[str, Any]:
    serving = spec.serving
    assert serving is not None
    requests = {"cpu": serving.resources.cpu, "memory": serving.resources.memory}
    limits = {"memory": serving.resources.memory}  # no CPU limit: throttling only adds latency
    if serving.gpus:
        gpu = catalogue.pools[serving.pool].gpu_resource
        if gpu is None:  # the spec's checks rule this out
            raise ValueError(f"serving.gpus: pool '{serving.pool}' has no GPUs (no gpu_resource); use a GPU pool")
        requests[gpu] = limits[gpu] = str(serving.gpus)
    return {"requests": requests, "limits": limits}


def _probe(path: str, period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures,
            "timeoutSeconds": timeout}


def deployment(spec: ModelSpec, settings: Settings, catalogue: Catalogue, namespace: str, version: str,
               rollout_id: str, *, traffic: bool, replicas: int) -> dict[str, Any]:
    """The rollout's Deployment. `traffic` puts its pods behind the model's Service (the switch); a
    candidate (`traffic=False`) is reached only through its own Service."""
    serving = spec.serving
    assert serving is not None
    labels = rollout_labels(spec, version, rollout_id)
    node_selector, tolerations = placement(catalogue.pools[serving.pool], "kubernetes")
    secure = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    env = [{"name": "__pyfunc_model_path__", "value": MODEL_DIR},
           {"name": "MLOPS_SERVING_MODEL", "value": spec.name},
           {"name": "MLOPS_SERVING_VERSION", "value": version},
           {"name": "MLOPS_SERVING_ROLE", "value": "stable" if traffic else "candidate"},
           {"name": "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT",
            "value": str(int(max(1, serving.timeouts.request_seconds)))},
           {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"}, {"name": "DO_NOT_TRACK", "value": "true"}]
    if not serving.gpus:
        env.append({"name": "CUDA_VISIBLE_DEVICES", "value": ""})
    tracking = [{"name": name, "valueFrom": {"secretKeyRef": {
        "name": settings.kubernetes.tracking_secret, "key": name, **({"optional": True} if optional else {})}}}
        for name, optional in SECRET_ENV]
    mount = [{"name": "model", "mountPath": MODEL_DIR}]
    pod_spec: dict[str, Any] = {
        "serviceAccountName": settings.serving.service_account,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": serving.timeouts.drain_seconds + PRESTOP_SECONDS + 5,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": 0, "fsGroup": RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "model", "emptyDir": {}}],
        "initContainers": [{
            "name": FETCH, "image": settings.serving.image, "imagePullPolicy": settings.kubernetes.image_pull_policy,
            "command": ["python", "-m", "mlops.serving.fetch", spec.name, version, MODEL_DIR],
            "env": tracking + [{"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"}],
            "volumeMounts": mount, "securityContext": secure,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}}],
        "containers": [{
            "name": SERVER, "image": settings.serving.image, "imagePullPolicy": settings.kubernetes.image_pull_policy,
            "command": ["python", "-m", "mlops.serving.worker", "--host", "0.0.0.0", "--port", str(PORT),  # noqa: S104
                        "--graceful-seconds", str(serving.timeouts.drain_seconds),
                        "--prestop-seconds", str(PRESTOP_SECONDS)],
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "env": env, "volumeMounts": mount, "securityContext": secure,
            "resources": resources(spec, catalogue),
            # The model loads before the server listens: the startup probe gives it ready_seconds.
            "startupProbe": _probe("/ping", 2, max(1, math.ceil(serving.timeouts.ready_seconds / 2)), 2),
            "readinessProbe": _probe("/health", 5, 2, 2),
            "livenessProbe": _probe("/ping", 10, 3, 5)}],
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    template_labels = {**labels, LABEL_TRAFFIC: "true" if traffic else "false"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": version_name(spec, version, rollout_id), "namespace": namespace, "labels": labels,
                         "annotations": {"mlops.airflow/owner": spec.owner}},
            "spec": {"replicas": replicas, "revisionHistoryLimit": 2,
                     "progressDeadlineSeconds": serving.timeouts.ready_seconds + 60,
                     "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": template_labels}, "spec": pod_spec}}}


def rollout_manifests(spec: ModelSpec, settings: Settings, catalogue: Catalogue, namespace: str, version: str,
                      rollout_id: str) -> list[dict[str, Any]]:
    """Everything a served version consists of once it serves: for review (`python -m mlops.serving
    manifests`) and validation."""
    assert spec.serving is not None
    objects = [model_service(spec, namespace), version_service(spec, namespace, version, rollout_id),
               deployment(spec, settings, catalogue, namespace, version, rollout_id, traffic=True,
                          replicas=spec.serving.replicas),
               disruption_budget(spec, namespace, version, rollout_id)]
    hpa = autoscaler(spec, namespace, version, rollout_id)
    return objects + ([hpa] if hpa else [])
