"""The kserve backend: a model as one KServe InferenceService in Standard (raw deployment) mode, KServe
0.20+, its versions as predictor variants (`spec.predictor` serves, `spec.canary` holds the candidate),
served by the cluster's MLflow runtime over the Open Inference Protocol (v2: `modelFormat: mlflow`,
`protocolVersion: v2`, `storageUri` the version's artifacts, which KServe's storage initializer fetches).

The same steps as the other backends: the candidate joins as a canary with 0% of the traffic (its own
Service answers the smoke test and the shadow bake); during the bake it takes `canary.traffic_percent` of
the live traffic; the switch promotes it (the primary's spec becomes the canary's, names included, so its
Deployment and pods serve on, scaled to `replicas`) and KServe removes the old variant, whose pods drain.
A rollback removes the canary entry (or the InferenceService, when nothing served before).

Variant names are `v<version>-<rollout id[:6]>`: KServe names the Deployment and Service
`<isvc>-<variant>-predictor`. The pods carry the rollout's labels (predictor.labels), so readiness failures
are judged on the pods as the kubernetes backend judges them.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from mlops.podplan import placement
from mlops.serving import endpoint, manifests
from mlops.serving.k8s import KubernetesBackend
from mlops.serving.manifests import LABEL_ROLLOUT, LABEL_VERSION
from mlops.settings import Settings
from mlops.spec import ModelSpec

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def storage_uri(download_uri: str, artifact_root: str | None) -> str:
    """The version's artifacts as KServe's storage initializer can read them. A tracking server that proxies
    artifacts hands out `mlflow-artifacts:/<path>`, which lies under its --artifacts-destination."""
    if not download_uri.startswith("mlflow-artifacts:"):
        return download_uri
    if not artifact_root:
        raise RuntimeError(f"the version's artifacts are behind the tracking server ({download_uri}), which KServe's "
                           "storage initializer cannot read: set MLOPS_KSERVE_ARTIFACT_ROOT to the server's "
                           "--artifacts-destination (e.g. gs://<bucket>/mlflow) and let mlops-serving read it")
    from urllib.parse import urlparse

    return f"{artifact_root.rstrip('/')}/{urlparse(download_uri).path.lstrip('/')}"  # also mlflow-artifacts://host/


def isvc_name(spec: ModelSpec) -> str:
    return manifests.dns_name(spec.name)


def variant(version: str, rollout_id: str) -> str:
    return f"v{version}-{rollout_id[:6]}"


def predictor(spec: ModelSpec, settings: Settings, catalogue: Any, version: str, rollout_id: str,
              storage_uri: str, *, serving: bool) -> dict[str, Any]:
    """One predictor variant. A candidate runs one pod; the serving one `replicas` (or autoscaling's bounds)."""
    s = spec.serving
    assert s is not None
    node_selector, tolerations = placement(catalogue.pools[s.pool], "kubernetes")
    resources = manifests.resources(spec, catalogue)
    scaling: dict[str, Any] = {"minReplicas": 1, "maxReplicas": 1}
    if serving:
        scaling = {"minReplicas": s.replicas, "maxReplicas": s.replicas}
        if s.autoscaling is not None:
            scaling = {"minReplicas": s.autoscaling.min_replicas, "maxReplicas": s.autoscaling.max_replicas,
                       "scaleMetric": "cpu", "scaleTarget": s.autoscaling.target_cpu_percent}
    env = [{"name": "MLSERVER_MODEL_VERSION", "value": version},  # each answer names the version
           {"name": "MLOPS_SERVING_MODEL", "value": spec.name}, {"name": "MLOPS_SERVING_VERSION", "value": version},
           {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"}]
    if not s.gpus:
        env.append({"name": "CUDA_VISIBLE_DEVICES", "value": ""})
    out: dict[str, Any] = {
        "name": variant(version, rollout_id), **scaling,
        "serviceAccountName": settings.serving.service_account,
        "labels": manifests.rollout_labels(spec, version, rollout_id),
        "terminationGracePeriodSeconds": s.timeouts.drain_seconds + manifests.PRESTOP_SECONDS + 5,
        "deploymentStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "model": {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "storageUri": storage_uri,
                  "runtime": settings.serving.kserve_runtime,
                  "env": env, "resources": resources},
    }
    if node_selector:
        out["nodeSelector"] = node_selector
    if tolerations:
        out["tolerations"] = tolerations
    return out


def inference_service(spec: ModelSpec, namespace: str, primary: dict[str, Any],
                      canary: dict[str, Any] | None = None, canary_percent: int = 0, *,
                      mode: str = "Standard", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "InferenceService",
        "metadata": {"name": isvc_name(spec), "namespace": namespace, "labels": manifests.model_labels(spec),
                     "annotations": {"serving.kserve.io/deploymentMode": mode, **(annotations or {})}},
        "spec": {"predictor": primary},
    }
    if canary is not None:
        body["spec"]["canary"] = [{"predictor": canary, "trafficPercent": canary_percent}]
    return body


class KServeBackend(KubernetesBackend):
    name = "kserve"
    server_container, fetch_container = "kserve-container", "storage-initializer"

    def __init__(self, settings: Settings, spec: ModelSpec, api_client: Any):
        from kubernetes import client

        super().__init__(settings, spec, api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.isvc = isvc_name(spec)
        self.protocol = endpoint.V2Protocol(self.isvc)

    # --- the InferenceService -----------------------------------------------------------------------
    def _get(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL,
                                                                             self.isvc)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def _replace(self, body: dict[str, Any]) -> None:
        """Create the InferenceService, or replace its spec whole (a predictor never merges with the one before),
        keeping what others put in its metadata (finalizers, labels, annotations); retried when KServe's own
        status writes got in between (409)."""
        from kubernetes.client.exceptions import ApiException

        for attempt in range(5):
            current = self._get()
            if current is None:
                self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
                return
            new = copy.deepcopy(body)
            meta = current["metadata"]
            new["metadata"] = {**{k: v for k, v in meta.items() if k in ("finalizers", "resourceVersion")},
                               **new["metadata"],
                               "labels": {**(meta.get("labels") or {}), **new["metadata"].get("labels", {})},
                               "annotations": {**(meta.get("annotations") or {}),
                                               **new["metadata"].get("annotations", {})},
                               "resourceVersion": meta["resourceVersion"]}
            try:
                self.custom.replace_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, self.isvc, new)
                return
            except ApiException as exc:
                if exc.status != 409 or attempt == 4:
                    raise
                time.sleep(0.2)

    def _storage_uri(self, version: str) -> str:
        from mlops import tracking

        uri = str(tracking.client(self.settings).get_model_version_download_uri(self.spec.name, version))
        return storage_uri(uri, self.settings.serving.kserve_artifact_root)

    def _predictor(self, version: str, tag: str, *, serving: bool) -> dict[str, Any]:
        return predictor(self.spec, self.settings, self.catalogue, version, tag, self._storage_uri(version),
                         serving=serving)

    def _dn(self, predictor_name: str) -> str:
        return f"{self.isvc}-{predictor_name}-predictor"

    @staticmethod
    def _primary(isvc: dict[str, Any] | None) -> dict[str, Any] | None:
        found: dict[str, Any] | None = (isvc or {}).get("spec", {}).get("predictor")
        return found

    # --- what serves ------------------------------------------------------------------------------------
    def endpoint(self) -> str | None:
        isvc = self._get()
        return str((isvc.get("status") or {}).get("url") or "") or None if isvc and self.serving_versions() else None

    def stable_url(self) -> str:
        primary = self._primary(self._get())
        assert primary is not None, "nothing serves"
        return self._service_url(self._dn(primary["name"]))

    def serving_versions(self) -> list[str]:
        isvc = self._get()
        primary = self._primary(isvc)
        if primary is None or not self._condition(isvc, "PredictorReady"):
            return []
        return [primary["labels"][LABEL_VERSION]]

    def status(self) -> dict[str, Any]:
        isvc = self._get()
        primary = self._primary(isvc)
        ready = len([p for p in self._pods(primary["labels"][LABEL_ROLLOUT]) if _ready(p)]) if primary else 0
        return {"backend": self.name, "endpoint": self.endpoint(), "versions": self.serving_versions(),
                "replicas": primary["minReplicas"] if primary else self.serving.replicas, "replicas_ready": ready}

    @staticmethod
    def _condition(isvc: dict[str, Any] | None, type_: str) -> bool:
        return any(c.get("type") == type_ and c.get("status") == "True"
                   for c in ((isvc or {}).get("status") or {}).get("conditions") or [])

    # --- readiness --------------------------------------------------------------------------------------
    def _variant_ready(self, isvc: dict[str, Any], name: str, replicas: int) -> bool:
        status = isvc.get("status") or {}
        if status.get("observedGeneration", 0) < isvc["metadata"].get("generation", 1):
            return False
        primary = self._primary(isvc)
        if primary is not None and primary["name"] == name:
            ok = self._condition(isvc, "PredictorReady")
        else:
            ok = any(c.get("name") == name and c.get("ready") for c in status.get("canaryStatuses") or [])
        tag = next((p["labels"][LABEL_ROLLOUT] for p in self._variants(isvc) if p["name"] == name), "")
        return ok and len([p for p in self._pods(tag) if _ready(p)]) >= replicas

    @staticmethod
    def _variants(isvc: dict[str, Any] | None) -> list[dict[str, Any]]:
        spec = (isvc or {}).get("spec") or {}
        return ([spec["predictor"]] if spec.get("predictor") else []) + [
            c["predictor"] for c in spec.get("canary") or []]

    def _wait_variant(self, name: str, tag: str, replicas: int, what: str) -> float:
        start = time.monotonic()
        while True:
            isvc = self._get()
            if isvc is None:
                raise endpoint.NotReady(f"{what} did not become ready: the InferenceService {self.ns}/{self.isvc} "
                                        "was deleted meanwhile")
            if self._variant_ready(isvc, name, replicas) and self._model_loaded(name):
                return time.monotonic() - start
            pods = self._pods(tag)
            for pod in pods:
                problem = self.pod_problem(pod)
                if problem:
                    raise endpoint.NotReady(f"{what} did not become ready: {problem}")
            model = self._model_failure(isvc, name)
            if model:
                raise endpoint.NotReady(f"{what} did not become ready: {model}")
            if time.monotonic() - start > self.serving.timeouts.ready_seconds:
                raise endpoint.NotReady(
                    f"{what} did not become ready: variant {name} of InferenceService {self.ns}/{self.isvc} not "
                    f"ready after {self.serving.timeouts.ready_seconds} s (probe timeout{self._scheduling(pods)}; "
                    "raise serving.timeouts.ready_seconds if the model loads slowly)")
            time.sleep(0.2)

    def _model_loaded(self, name: str) -> bool:
        """The model itself answers ready (`/v2/models/<name>/ready`), not only the server: MLServer listens
        before it loads the model, and a model that cannot load ends it a moment later."""
        import requests

        try:
            url = f"{self._service_url(self._dn(name))}/v2/models/{self.isvc}/ready"
            return bool(self.session().get(url, timeout=5).status_code == 200)
        except requests.RequestException:
            return False

    def _model_failure(self, isvc: dict[str, Any], name: str) -> str | None:
        """KServe's own verdict on the variant's model (a runtime that does not exist, a spec it refuses)."""
        status = isvc.get("status") or {}
        primary = self._primary(isvc)
        model = status.get("modelStatus") if primary is not None and primary["name"] == name else next(
            (c.get("modelStatus") for c in status.get("canaryStatuses") or [] if c.get("name") == name), None)
        info = (model or {}).get("lastFailureInfo") or {}
        if (model or {}).get("transitionStatus") == "InvalidSpec":
            return f"KServe cannot serve it: {info.get('reason')}: {info.get('message')}"
        return None

    # --- rollout steps ------------------------------------------------------------------------------------
    def start_candidate(self, version: str, tag: str, previous: tuple[str, str] | None = None) -> dict[str, Any]:
        """The version as a canary with 0% of the traffic (the primary, on a first deploy); ready or why not."""
        self.abort(tag, previous)
        isvc = self._get()
        candidate = self._predictor(version, tag, serving=False)
        primary = self._primary(isvc)
        if primary is None:
            self._replace(inference_service(self.spec, self.ns, candidate))
        else:
            self._replace(inference_service(self.spec, self.ns, primary, candidate, 0))
        name = candidate["name"]
        handle: dict[str, Any] = {"version": version, "ids": [self._dn(name)],
                                  "url": self._service_url(self._dn(name))}
        try:
            handle["ready_seconds"] = self._wait_variant(name, tag, 1, f"{self.spec.name} v{version}")
        except endpoint.NotReady:
            self.abort(tag, previous)
            raise
        return handle

    def candidate_problem(self, url: str) -> str | None:
        dn = url.rsplit("/services/", 1)[-1].split(":", 1)[0]
        isvc = self._get()
        mine = next((p for p in self._variants(isvc) if self._dn(p["name"]) == dn), None)
        if isvc is None or mine is None:
            return (f"the candidate {dn} is no longer in InferenceService {self.ns}/{self.isvc} (its rollout was "
                    "rolled back); clear start_candidate to start it again")
        if not self._variant_ready(isvc, mine["name"], 1):
            problems = [p for p in (self.pod_problem(pod) for pod in self._pods(mine["labels"][LABEL_ROLLOUT])) if p]
            return f"the candidate {dn} is not ready" + (f": {problems[0]}" if problems else "")
        return None

    def begin_bake(self, tag: str) -> None:
        """The candidate takes `canary.traffic_percent` of the live traffic while the bake runs."""
        isvc = self._get()
        primary = self._primary(isvc)
        canary = next((p for p in self._variants(isvc)[1:] if p["labels"][LABEL_ROLLOUT] == tag), None)
        if primary is None or canary is None:  # a first deploy: the candidate is the primary already
            return
        self._replace(inference_service(self.spec, self.ns, primary, canary, self.serving.canary.traffic_percent))

    def switch(self, version: str, tag: str) -> dict[str, Any]:
        """Two steps, so capacity never drops: the candidate grows to the serving size where it is (canary or,
        on a first deploy, primary), then it is promoted (the primary takes its spec, name included, so its
        Deployment and pods serve on) and KServe removes the old variant. Idempotent."""
        promoted = self._predictor(version, tag, serving=True)
        name, size = promoted["name"], promoted["minReplicas"]
        what = f"{self.spec.name} v{version} ({size} replica(s))"
        isvc = self._get()
        primary = self._primary(isvc)
        canary = next((c for c in (isvc or {}).get("spec", {}).get("canary") or []
                       if c["predictor"]["name"] == name), None)
        if primary is not None and primary["name"] != name and canary is not None:
            self._replace(inference_service(self.spec, self.ns, primary, promoted, int(canary["trafficPercent"])))
            self._wait_variant(name, tag, size, what)
        self._replace(inference_service(self.spec, self.ns, promoted))
        self._wait_variant(name, tag, size, what)
        pods = [p["metadata"]["name"] for p in self._pods(tag) if _ready(p)]
        return {"version": version, "ids": [self._dn(name)], "endpoint": self.endpoint(),
                "urls": [self._pod_url(p) for p in pods]}

    def _other_tags(self, tag: str) -> set[str]:
        from mlops.podplan import LABEL_MODEL

        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"{LABEL_MODEL}={self.spec.name}").items
        return {(p.metadata.labels or {}).get(LABEL_ROLLOUT, "") for p in pods} - {tag}

    def retire(self, tag: str) -> list[str]:
        """The old variant left the spec at the switch; wait until its pods have drained. Returns the versions
        that stopped serving."""
        from mlops.podplan import LABEL_MODEL

        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"{LABEL_MODEL}={self.spec.name}").items
        old = {(p.metadata.labels or {}).get(LABEL_VERSION, "") for p in pods
               if (p.metadata.labels or {}).get(LABEL_ROLLOUT) != tag}
        isvc = self._get()
        if len(self._variants(isvc)) > 1:  # an interrupted rollout's canary: drop it
            primary = self._primary(isvc)
            assert primary is not None
            self._replace(inference_service(self.spec, self.ns, primary))
        self._wait_gone(self._other_tags(tag))
        kept = {p["labels"][LABEL_VERSION] for p in self._variants(self._get())}
        return sorted(old - kept)

    def abort(self, tag: str, previous: tuple[str, str] | None = None) -> list[str]:
        """Take this rollout's variant out: a canary entry goes; a primary (the switch was done) gives way to
        `previous`, brought back the safe way (as a canary, ready at the serving size, then promoted), or, on
        a first deploy, the InferenceService goes."""
        from kubernetes.client.exceptions import ApiException

        isvc = self._get()
        mine = [p for p in self._variants(isvc) if p["labels"][LABEL_ROLLOUT] == tag]
        if not mine:
            return []
        primary = self._primary(isvc)
        assert primary is not None
        if primary["labels"][LABEL_ROLLOUT] != tag:
            self._replace(inference_service(self.spec, self.ns, primary))
        elif previous is not None:
            version, rollout = previous
            back = self._predictor(version, rollout, serving=True)
            what = f"{self.spec.name} v{version} (put back)"
            self._replace(inference_service(self.spec, self.ns, primary, back, 0))
            self._wait_variant(back["name"], rollout, back["minReplicas"], what)
            self._replace(inference_service(self.spec, self.ns, back))
            self._wait_variant(back["name"], rollout, back["minReplicas"], what)
        else:
            try:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, self.isvc)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        self._wait_gone({tag})
        return [self._dn(p["name"]) for p in mine]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


REVISION_LABEL = "serving.knative.dev/revision"


def serverless_service(spec: ModelSpec, namespace: str, predictor_spec: dict[str, Any],
                       percent: int | None = None) -> dict[str, Any]:
    """The Serverless InferenceService: one predictor (Knative names its revisions), an optional
    canaryTrafficPercent, and tag routing (the `latest` and `prev` revisions get URLs of their own)."""
    predictor_spec = dict(predictor_spec)
    predictor_spec.pop("name", None)
    if percent is not None:
        predictor_spec["canaryTrafficPercent"] = percent
    return inference_service(spec, namespace, predictor_spec, mode="Serverless",
                             annotations={"serving.kserve.io/enable-tag-routing": "true"})


class KServeServerlessBackend(KServeBackend):
    """`serving.kserve_mode: Serverless`: one predictor, KServe's canaryTrafficPercent over Knative revisions.

    The candidate is the predictor's new spec with canaryTrafficPercent 0: Knative makes it a revision that
    takes no traffic until the bake gives it `canary.traffic_percent`; the switch drops the percent (nothing
    else changes, so no new revision), and the revision takes everything and becomes the rolled-out one. A
    revision's size is part of it, so the candidate starts at the serving size. Putting the previous version
    back re-applies its predictor, which Knative makes a new revision; traffic stays on the rolled-out one
    until it is ready. What serves is read from the rolled-out revision's pods (their rollout labels); nothing
    is kept in the InferenceService's annotations, which KServe copies into revisions."""

    def _body(self, predictor: dict[str, Any], percent: int | None = None) -> dict[str, Any]:
        return serverless_service(self.spec, self.ns, predictor, percent)

    @staticmethod
    def _component(isvc: dict[str, Any] | None) -> dict[str, Any]:
        found: dict[str, Any] = (((isvc or {}).get("status") or {}).get("components") or {}).get("predictor") or {}
        return found

    def _labels_of(self, revision: str | None) -> dict[str, str]:
        """The rollout labels of a revision's pods ({} without pods)."""
        if not revision:
            return {}
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"{REVISION_LABEL}={revision}").items
        return dict(pods[0].metadata.labels or {}) if pods else {}

    def _revision_of(self, tag: str) -> str | None:
        """The newest revision whose pods carry this rollout's labels."""
        from mlops.podplan import LABEL_MODEL

        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=f"{LABEL_MODEL}={self.spec.name},{LABEL_ROLLOUT}={tag}").items
        revisions = sorted({(p.metadata.labels or {}).get(REVISION_LABEL, "") for p in pods} - {""})
        return revisions[-1] if revisions else None  # Knative numbers revisions: the last sorts last

    def _rolled(self, isvc: dict[str, Any] | None) -> dict[str, str]:
        return self._labels_of(self._component(isvc).get("latestRolledoutRevision"))

    def serving_versions(self) -> list[str]:
        isvc = self._get()
        version = self._rolled(isvc).get(LABEL_VERSION)
        return [version] if version and self._condition(isvc, "PredictorReady") else []

    def stable_url(self) -> str:
        rolled = self._component(self._get()).get("latestRolledoutRevision")
        assert rolled, "nothing serves"
        return self._service_url(f"{rolled}-private")

    def status(self) -> dict[str, Any]:
        isvc = self._get()
        tag = self._rolled(isvc).get(LABEL_ROLLOUT)
        ready = len([p for p in self._pods(tag) if _ready(p)]) if tag else 0
        return {"backend": self.name, "endpoint": self.endpoint(), "versions": self.serving_versions(),
                "replicas": self.serving.replicas, "replicas_ready": ready}

    def _wait_revision(self, tag: str, replicas: int, what: str, *, rolled_out: bool) -> tuple[str, float]:
        start = time.monotonic()
        while True:
            isvc = self._get()
            if isvc is None:
                raise endpoint.NotReady(f"{what} did not become ready: the InferenceService was deleted meanwhile")
            component = self._component(isvc)
            rev = self._revision_of(tag)
            current = (isvc.get("status") or {}).get("observedGeneration", 0) >= isvc["metadata"].get("generation", 1)
            if current and rev and component.get("latestReadyRevision") == rev and (
                    not rolled_out or component.get("latestRolledoutRevision") == rev):
                pods = [p for p in self._pods(tag) if _ready(p)]
                if len(pods) >= replicas and self._loaded(f"{rev}-private"):
                    return rev, time.monotonic() - start
            pods = self._pods(tag)
            for pod in pods:
                problem = self.pod_problem(pod)
                if problem:
                    raise endpoint.NotReady(f"{what} did not become ready: {problem}")
            if time.monotonic() - start > self.serving.timeouts.ready_seconds:
                raise endpoint.NotReady(
                    f"{what} did not become ready: its revision of InferenceService {self.ns}/{self.isvc} is not "
                    f"ready after {self.serving.timeouts.ready_seconds} s ({self.why_slow(pods)})")
            time.sleep(0.2)

    def _loaded(self, service: str) -> bool:
        import requests

        try:
            url = f"{self._service_url(service)}/v2/models/{self.isvc}/ready"
            return bool(self.session().get(url, timeout=5).status_code == 200)
        except requests.RequestException:
            return False

    def _predictor_tag(self, isvc: dict[str, Any] | None) -> str | None:
        primary = self._primary(isvc)
        return (primary.get("labels") or {}).get(LABEL_ROLLOUT) if primary else None

    def start_candidate(self, version: str, tag: str, previous: tuple[str, str] | None = None) -> dict[str, Any]:
        self.abort(tag, previous)
        isvc = self._get()
        candidate = self._predictor(version, tag, serving=True)
        first = isvc is None or not self._rolled(isvc)
        self._replace(self._body(candidate, None if first else 0))
        what = f"{self.spec.name} v{version}"
        try:
            rev, seconds = self._wait_revision(tag, 1, what, rolled_out=False)
        except endpoint.NotReady:
            self.abort(tag, previous)
            raise
        return {"version": version, "ids": [rev], "url": self._service_url(f"{rev}-private"),
                "ready_seconds": seconds}

    def candidate_problem(self, url: str) -> str | None:
        rev = url.rsplit("/services/", 1)[-1].split(":", 1)[0].removesuffix("-private")
        component = self._component(self._get())
        if component.get("latestCreatedRevision") != rev:
            return (f"the candidate revision {rev} is no longer the InferenceService's latest (its rollout was "
                    "rolled back); clear start_candidate to start it again")
        if component.get("latestReadyRevision") != rev:
            return f"the candidate revision {rev} is not ready"
        return None

    def begin_bake(self, tag: str) -> None:
        isvc = self._get()
        if isvc is None or self._predictor_tag(isvc) != tag or self._rolled(isvc).get(LABEL_ROLLOUT) in (None, tag):
            return  # a first deploy (the candidate serves already), or not this rollout's predictor
        self._replace(self._body(isvc["spec"]["predictor"], self.serving.canary.traffic_percent))

    def switch(self, version: str, tag: str) -> dict[str, Any]:
        promoted = self._predictor(version, tag, serving=True)
        self._replace(self._body(promoted))
        rev, _ = self._wait_revision(tag, promoted["minReplicas"],
                                     f"{self.spec.name} v{version} ({promoted['minReplicas']} replica(s))",
                                     rolled_out=True)
        pods = [p["metadata"]["name"] for p in self._pods(tag) if _ready(p)]
        return {"version": version, "ids": [rev], "endpoint": self.endpoint(), "urls": [self._pod_url(p) for p in pods]}

    def endpoint(self) -> str | None:
        isvc = self._get()
        return str((isvc.get("status") or {}).get("url") or "") or None if isvc and self.serving_versions() else None

    def retire(self, tag: str) -> list[str]:
        """Knative leaves revisions without traffic to scale down: wait until their pods have drained."""
        from mlops.podplan import LABEL_MODEL

        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"{LABEL_MODEL}={self.spec.name}").items
        old = {(p.metadata.labels or {}).get(LABEL_VERSION, "") for p in pods
               if (p.metadata.labels or {}).get(LABEL_ROLLOUT) != tag}
        self._wait_gone(self._other_tags(tag))
        return sorted(old - set(self.serving_versions()))

    def abort(self, tag: str, previous: tuple[str, str] | None = None) -> list[str]:
        """When the predictor is this rollout's: re-apply `previous` (Knative makes it a new revision; traffic
        stays on the rolled-out one until it is ready), or delete the InferenceService on a first deploy."""
        from kubernetes.client.exceptions import ApiException

        isvc = self._get()
        if isvc is None or self._predictor_tag(isvc) != tag:
            return []
        if previous is not None:
            version, rollout = previous
            self._replace(self._body(self._predictor(version, rollout, serving=True)))
            self._wait_revision(rollout, self.serving.replicas, f"{self.spec.name} v{version} (put back)",
                                rolled_out=True)
            self._wait_settled()
        else:
            try:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, self.isvc)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        self._wait_gone({tag})
        return [self.isvc]

    def _wait_settled(self) -> None:
        """Until the newest revision is the rolled-out one and the others' pods are gone (bounded: the serving
        version serves throughout, this only keeps the cluster tidy before returning)."""
        from mlops.podplan import LABEL_MODEL

        deadline = time.monotonic() + self.serving.timeouts.ready_seconds + self.serving.timeouts.drain_seconds + 30
        while time.monotonic() < deadline:
            component = self._component(self._get())
            rolled = component.get("latestRolledoutRevision")
            if rolled and rolled == component.get("latestCreatedRevision"):
                pods = self.core.list_namespaced_pod(
                    self.ns, label_selector=f"{LABEL_MODEL}={self.spec.name}").items
                if all((p.metadata.labels or {}).get(REVISION_LABEL) == rolled for p in pods):
                    return
            time.sleep(0.2)
