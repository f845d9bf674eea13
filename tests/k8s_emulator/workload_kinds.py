"""The kinds beyond pods, events, secrets and nodes that the emulator stores: how each is addressed,
validated at admission and defaulted. Deployments have a controller (controllers.py) and Services route
the API server's proxy; PodDisruptionBudgets and HorizontalPodAutoscalers are stored, validated and
served, but nothing acts on them (no evictions, no scaling).

Core and built-in kinds are validated with kubernetes_validate (strict, Kubernetes 1.31) as pods are;
a custom resource is validated against the OpenAPI schema its CRD publishes, shipped as test data
(tests/data/crds), so a misspelt field fails at create time with 422 as it would on a real cluster.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate

from .state import State
from .validation import K8S_VERSION, _field_path, default_pod, invalid

CRD_SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "crds"


@dataclass(frozen=True)
class Kind:
    plural: str
    group: str
    version: str
    kind: str
    schema: str | None = None  # a custom resource's JSON Schema under CRD_SCHEMAS
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = {k.plural: k for k in (
    Kind("services", "", "v1", "Service"),
    Kind("deployments", "apps", "v1", "Deployment"),
    Kind("poddisruptionbudgets", "policy", "v1", "PodDisruptionBudget"),
    Kind("horizontalpodautoscalers", "autoscaling", "v2", "HorizontalPodAutoscaler"),
    Kind("inferenceservices", "serving.kserve.io", "v1beta1", "InferenceService", "inferenceservice-v1beta1.json"),
    Kind("clusterservingruntimes", "serving.kserve.io", "v1alpha1", "ClusterServingRuntime",
         "clusterservingruntime-v1alpha1.json", namespaced=False),
    Kind("clusterstoragecontainers", "serving.kserve.io", "v1alpha1", "ClusterStorageContainer",
         "clusterstoragecontainer-v1alpha1.json", namespaced=False),
)}
_CLUSTER_IPS = (str(ipaddress.ip_address("10.96.0.10") + i) for i in itertools.count())


def validate_object(kind: Kind, obj: dict) -> None:
    name = (obj.get("metadata") or {}).get("name") or ""
    if not name:
        raise invalid(kind.kind, "", [("metadata.name", "Required value: name or generateName is required")])
    if kind.schema:
        _validate_custom(kind, obj, name)
    else:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise invalid(kind.kind, name, [(_field_path(exc.path), exc.message)]) from None
    if kind.kind == "Deployment":
        spec = obj["spec"]
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not wanted or any(labels.get(k) != v for k, v in wanted.items()):
            raise invalid(kind.kind, name, [("spec.template.metadata.labels", "Invalid value: `selector` does not "
                                             "match template `labels`")])


def _validate_custom(kind: Kind, obj: dict, name: str) -> None:
    import jsonschema

    schema = json.loads((CRD_SCHEMAS / kind.schema).read_text())  # type: ignore[operator]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        raise invalid(kind.kind, name, [(_field_path(e.absolute_path), e.message) for e in errors[:5]])


def default_object(kind: Kind, obj: dict, state: State) -> None:
    """What the API server fills in, so reads look like a real cluster's objects."""
    spec = obj.setdefault("spec", {})
    if kind.kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {})
            strategy["rollingUpdate"].setdefault("maxSurge", "25%")
            strategy["rollingUpdate"].setdefault("maxUnavailable", "25%")
        template = spec["template"]
        pod = default_pod({"metadata": template.get("metadata") or {}, "spec": template["spec"]})
        template["spec"] = pod["spec"]
    elif kind.kind == "Service":
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if "clusterIP" not in spec:
            spec["clusterIP"] = next(_CLUSTER_IPS)
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port["port"])
    # What the controllers first write (no PDB or HPA controller runs here: their status stays at this).
    obj.setdefault("status", {
        "PodDisruptionBudget": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0},
        "HorizontalPodAutoscaler": {"currentReplicas": 0, "desiredReplicas": 0},
    }.get(kind.kind, {}))

