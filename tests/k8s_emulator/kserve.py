"""KServe's InferenceService controller, as the serving tests need it: Standard (raw deployment) mode,
and Serverless mode with Knative's revisions and canaryTrafficPercent (see `_serverless`; Knative itself is
not emulated, only what KServe shows of it: revisions as Deployments, their traffic, the status).

Standard mode:
For each InferenceService, every predictor variant becomes a Deployment and a Service of that name: the
primary (`spec.predictor`, `<isvc>-<predictor.name>-predictor`, or `<isvc>-predictor` without a name) and
each canary of `spec.canary` (KServe 0.20+: `<isvc>-<canary predictor.name>-predictor`). Their pods are
built as KServe builds them: the container of the ClusterServingRuntime that supports the model's format and
protocol (`{{.Name}}` replaced by the InferenceService's name, the model's env and resources on top), and a
`storage-initializer` init container from the ClusterStorageContainer whose URI prefix matches storageUri,
which fills the `/mnt/models` emptyDir. A Service named like the InferenceService routes by the variants'
traffic percents (the primary gets what the canaries do not): the emulator's service proxy reads the
weights from its `emulator/traffic` annotation, standing in for the ingress. Promoting a canary (the
primary's name set to the canary's, the canary entry removed) keeps its Deployment, so its pods serve on.
Variants no longer in the spec, and everything of a deleted InferenceService, are deleted.

Status: PredictorReady and Ready (the primary's Deployment available), canaryStatuses (name, ready,
trafficPercent, modelStatus), modelStatus (Loaded, Pending, or FailedToLoad with the crashed container's
exit code), url and address, observedGeneration.
"""

from __future__ import annotations

import copy
import json

from .state import ApiError, State, rfc3339
from .workload_kinds import KINDS, default_object

TRAFFIC_ANNOTATION = "emulator/traffic"
REVISION_LABEL = "serving.knative.dev/revision"
CONFIG_ANNOTATION = "emulator/revision-config"  # the predictor a revision was made from
GENERATION_ANNOTATION = "serving.knative.dev/configurationGeneration"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
MODEL_DIR = "/mnt/models"
_VOLUME = "kserve-provision-location"


def variant_name(isvc: str, predictor: dict) -> str:
    return f"{isvc}-{predictor['name']}-predictor" if predictor.get("name") else f"{isvc}-predictor"


class InferenceServiceController:
    def __init__(self, state: State):
        self.state = state

    def reconcile(self) -> None:
        services = self.state.list_objects("InferenceService")
        wanted: set[tuple[str, str]] = set()
        for isvc in services:
            try:
                wanted |= self._one(isvc)
            except ApiError:
                continue
        for kind in ("Deployment", "Service"):  # variants that left the spec, and deleted InferenceServices
            for obj in self.state.list_objects(kind):
                meta = obj["metadata"]
                owner = (meta.get("labels") or {}).get(ISVC_LABEL)
                if owner and (meta["namespace"], meta["name"]) not in wanted:
                    try:
                        self.state.delete_object(kind, meta["namespace"], meta["name"])
                    except ApiError:
                        pass

    # -- one InferenceService ----------------------------------------------------------------------------
    def _one(self, isvc: dict) -> set[tuple[str, str]]:
        mode = (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode", "Serverless")
        if mode == "Serverless":
            return self._serverless(isvc)
        return self._standard(isvc)

    # -- Serverless mode: Knative revisions, canaryTrafficPercent ------------------------------------------
    def _serverless(self, isvc: dict) -> set[tuple[str, str]]:
        """Each change of the predictor (canaryTrafficPercent aside) is a new revision `<isvc>-predictor-0000N`
        (a Deployment and its `-private` Service). Traffic as KServe splits it: a new revision that is ready
        takes canaryTrafficPercent (all of it without one, and becomes the rolled-out revision); one that is
        not ready takes none; revisions without traffic are removed (Knative scales them to zero)."""
        meta, spec = isvc["metadata"], isvc["spec"]
        ns, name = meta["namespace"], meta["name"]
        predictor = dict(spec["predictor"])
        percent = predictor.pop("canaryTrafficPercent", None)
        # KServe copies the InferenceService's annotations into the revision template: a changed one is a
        # new revision too
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("emulator/")}
        config = json.dumps({"predictor": predictor, "annotations": annotations}, sort_keys=True)
        revisions = sorted((d for d in self.state.list_objects("Deployment", ns)
                            if (d["metadata"].get("labels") or {}).get(ISVC_LABEL) == name
                            and REVISION_LABEL in d["metadata"]["labels"]),
                           key=lambda d: int(d["metadata"]["annotations"][GENERATION_ANNOTATION]))
        problems: dict[str, str] = {}
        if not revisions or revisions[-1]["metadata"]["annotations"][CONFIG_ANNOTATION] != config:
            number = int(revisions[-1]["metadata"]["annotations"][GENERATION_ANNOTATION]) + 1 if revisions else 1
            try:
                revisions.append(self._new_revision(isvc, predictor, config, number))
            except LookupError as exc:
                problems[f"{name}-predictor-{number:05d}"] = str(exc)
        names = [d["metadata"]["labels"][REVISION_LABEL] for d in revisions]
        ready = {r: self._available(ns, f"{r}-deployment") for r in names}
        status = isvc.get("status") or {}
        component = dict((status.get("components") or {}).get("predictor") or {})
        latest = names[-1] if names else None
        rolled, previous = component.get("latestRolledoutRevision"), component.get("previousRolledoutRevision")
        if rolled not in names:
            rolled = None
        traffic, rolled, previous = split_traffic(latest, ready, rolled, previous, percent)
        keep = set(traffic) | ({latest} if latest else set())
        wanted: set[tuple[str, str]] = set()
        for rev in names:
            if rev in keep:
                wanted |= {(ns, f"{rev}-deployment"), (ns, f"{rev}-private")}
                svc = self._service(isvc, f"{rev}-private")
                svc["spec"]["selector"] = {"app": rev}
                self._apply("Service", ns, svc)
        route = {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": name, "namespace": ns, "labels": {ISVC_LABEL: name},
            "annotations": {TRAFFIC_ANNOTATION: json.dumps({f"{r}-private": p for r, p in traffic.items()},
                                                           sort_keys=True)}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
        self._apply("Service", ns, route)
        wanted |= {(ns, name)}
        url = f"http://{name}.{ns}.svc.cluster.local"
        serving_ready = rolled is not None and ready.get(rolled, False)
        latest_ready = next((r for r in reversed(names) if ready[r]), None)
        component = {
            "url": url, "address": {"url": url},
            **({"latestCreatedRevision": latest} if latest else {}),
            **({"latestReadyRevision": latest_ready} if latest_ready else {}),
            **({"latestRolledoutRevision": rolled} if rolled else {}),
            **({"previousRolledoutRevision": previous} if previous else {}),
            "traffic": [{"revisionName": r, "percent": p, "latestRevision": r == latest,
                         **({"tag": "latest"} if r == latest and len(traffic) > 1 else {}),
                         **({"tag": "prev"} if r != latest else {})} for r, p in traffic.items()],
        }
        failure = None if latest is None else self._model_status(ns, latest, ready[latest], problems.get(latest))

        def condition(type_: str, ok: bool, reason: str = "RevisionFailed") -> dict:
            return {"type": type_, "status": "True" if ok else "False", "lastTransitionTime": rfc3339(),
                    **({} if ok else {"reason": reason})}
        new_status = {
            "observedGeneration": meta.get("generation", 1), "deploymentMode": "Serverless", "url": url,
            "address": {"url": url}, "components": {"predictor": component},
            "conditions": [condition("IngressReady", True), condition("LatestDeploymentReady",
                                                                      bool(latest and ready[latest])),
                           condition("PredictorReady", serving_ready), condition("Ready", serving_ready)],
            **({"modelStatus": failure} if failure else {}),
        }
        self._write(isvc, new_status)
        return wanted

    def _new_revision(self, isvc: dict, predictor: dict, config: str, number: int) -> dict:
        ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
        rev = f"{name}-predictor-{number:05d}"
        deployment = self._deployment(isvc, {**predictor, "name": ""}, rev)
        deployment["metadata"]["name"] = f"{rev}-deployment"
        deployment["metadata"]["labels"][REVISION_LABEL] = rev
        deployment["metadata"]["annotations"] = {CONFIG_ANNOTATION: config, GENERATION_ANNOTATION: str(number)}
        for where in (deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"]):
            where["app"] = rev
        deployment["spec"]["selector"] = {"matchLabels": {"app": rev}}
        self._apply("Deployment", ns, deployment)
        return self.state.get_object("Deployment", ns, f"{rev}-deployment")

    def _standard(self, isvc: dict) -> set[tuple[str, str]]:
        meta, spec = isvc["metadata"], isvc["spec"]
        ns, name = meta["namespace"], meta["name"]
        canaries = spec.get("canary") or []
        variants = [(spec["predictor"], 100 - sum(int(c.get("trafficPercent", 0)) for c in canaries), False)]
        variants += [(c["predictor"], int(c.get("trafficPercent", 0)), True) for c in canaries]
        wanted, weights, statuses, problems = set(), {}, [], {}
        for predictor, percent, canary in variants:
            dn = variant_name(name, predictor)
            wanted |= {(ns, dn)}
            weights[dn] = max(0, percent)
            try:
                self._apply("Deployment", ns, self._deployment(isvc, predictor, dn))
            except LookupError as exc:  # no runtime or storage container: the variant cannot be built
                problems[dn] = str(exc)
                statuses.append((predictor, percent, canary, False, dn))
                continue
            self._apply("Service", ns, self._service(isvc, dn))
            statuses.append((predictor, percent, canary, self._available(ns, dn), dn))
        route = {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": name, "namespace": ns, "labels": {ISVC_LABEL: name},
            "annotations": {TRAFFIC_ANNOTATION: json.dumps(weights, sort_keys=True)}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
        self._apply("Service", ns, route)
        wanted |= {(ns, name)}
        self._write_status(isvc, statuses, problems)
        return wanted

    def _runtime(self, model: dict) -> dict:
        fmt = (model.get("modelFormat") or {}).get("name")
        protocol = model.get("protocolVersion", "v1")
        for runtime in self.state.list_objects("ClusterServingRuntime"):
            rs = runtime["spec"]
            if model.get("runtime") and runtime["metadata"]["name"] != model["runtime"]:
                continue
            formats = {f["name"] for f in rs.get("supportedModelFormats") or [] if f.get("autoSelect", True)
                       or model.get("runtime")}
            if fmt in formats and protocol in (rs.get("protocolVersions") or ["v1"]) and not rs.get("disabled"):
                return runtime
        raise LookupError(f"no ClusterServingRuntime supports model format {fmt!r} with protocol {protocol}")

    def _storage(self, uri: str) -> dict:
        for storage in self.state.list_objects("ClusterStorageContainer"):
            for fmt in storage["spec"].get("supportedUriFormats") or []:
                if uri.startswith(fmt.get("prefix", "\0")):
                    return storage
        raise LookupError(f"no ClusterStorageContainer supports the storage URI {uri!r}")

    def _deployment(self, isvc: dict, predictor: dict, dn: str) -> dict:
        meta = isvc["metadata"]
        model = predictor["model"]
        runtime = self._runtime(model)
        container = copy.deepcopy(runtime["spec"]["containers"][0])

        def fill(text: str) -> str:
            return text.replace("{{.Name}}", meta["name"])
        container["name"] = "kserve-container"
        container["args"] = [fill(a) for a in container.get("args") or []]
        env = [{**e, "value": fill(e["value"])} if "value" in e else e for e in container.get("env") or []]
        names = {e["name"] for e in model.get("env") or []}
        container["env"] = [e for e in env if e["name"] not in names] + list(model.get("env") or [])
        if model.get("resources"):
            container["resources"] = model["resources"]
        container["volumeMounts"] = [*container.get("volumeMounts", []),
                                     {"name": _VOLUME, "mountPath": MODEL_DIR, "readOnly": True}]
        storage = self._storage(model["storageUri"])["spec"]["container"]
        init = {**copy.deepcopy(storage), "name": "storage-initializer",
                "args": [*(storage.get("args") or []), model["storageUri"], MODEL_DIR],
                "volumeMounts": [{"name": _VOLUME, "mountPath": MODEL_DIR}]}
        pod_fields = ("serviceAccountName", "nodeSelector", "tolerations", "securityContext", "affinity",
                      "automountServiceAccountToken", "terminationGracePeriodSeconds", "imagePullSecrets")
        pod = {k: predictor[k] for k in pod_fields if k in predictor}
        labels = {ISVC_LABEL: meta["name"], "component": "predictor", "app": dn, **(predictor.get("labels") or {})}
        strategy = predictor.get("deploymentStrategy") or {
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": dn, "namespace": meta["namespace"], "labels": labels,
                             "ownerReferences": [{"apiVersion": "serving.kserve.io/v1beta1",
                                                  "kind": "InferenceService", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True}]},
                "spec": {"replicas": int(predictor.get("minReplicas", 1)), "selector": {"matchLabels": {"app": dn}},
                         "strategy": strategy,
                         "template": {"metadata": {"labels": labels,
                                                   "annotations": dict(predictor.get("annotations") or {})},
                                      "spec": {**pod, "volumes": [{"name": _VOLUME, "emptyDir": {}}],
                                               "initContainers": [init], "containers": [container]}}}}

    @staticmethod
    def _service(isvc: dict, dn: str) -> dict:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": dn, "namespace": isvc["metadata"]["namespace"],
                             "labels": {ISVC_LABEL: isvc["metadata"]["name"], "app": dn}},
                "spec": {"selector": {"app": dn},
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}

    def _apply(self, kind: str, ns: str, obj: dict) -> None:
        """Create, or bring the object's spec (and labels, annotations) to `obj` when they differ."""
        current = self.state.find_object(kind, ns, obj["metadata"]["name"])
        desired = copy.deepcopy(obj)
        default_object(KINDS[kind.lower() + "s"], desired, self.state)
        if current is None:
            self.state.create_object(kind, ns, desired)
            return
        same = current["spec"] == {**desired["spec"], **{k: current["spec"][k] for k in ("clusterIP", "clusterIPs")
                                                       if k in current["spec"]}}
        if same and all(current["metadata"].get(k) == desired["metadata"].get(k) for k in ("labels", "annotations")):
            return

        def update(o: dict) -> None:
            keep = {k: o["spec"][k] for k in ("clusterIP", "clusterIPs") if k in o["spec"]}
            o["spec"] = {**desired["spec"], **keep}
            for key in ("labels", "annotations"):
                if key in desired["metadata"]:
                    o["metadata"][key] = desired["metadata"][key]
        self.state.update_object(kind, ns, obj["metadata"]["name"], update)

    def _available(self, ns: str, dn: str) -> bool:
        d = self.state.find_object("Deployment", ns, dn)
        s = (d or {}).get("status") or {}
        return bool(d) and s.get("availableReplicas", 0) >= 1 and s.get("observedGeneration", 0) >= d[
            "metadata"].get("generation", 1) and s.get("updatedReplicas", 0) >= 1

    def _model_status(self, ns: str, dn: str, ready: bool, problem: str | None) -> dict:
        if ready:
            return {"states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                    "transitionStatus": "UpToDate"}
        for pod in self.state.list_pods(ns):
            if (pod["metadata"].get("labels") or {}).get("app") != dn:
                continue
            statuses = (pod["status"].get("initContainerStatuses") or []) + (
                pod["status"].get("containerStatuses") or [])
            for cs in statuses:
                last = (cs.get("lastState") or {}).get("terminated") or {}
                if last.get("exitCode") not in (None, 0):
                    return {"states": {"activeModelState": "FailedToLoad", "targetModelState": "Loaded"},
                            "transitionStatus": "BlockedByFailedLoad",
                            "lastFailureInfo": {"reason": "ModelLoadFailed", "exitCode": last["exitCode"],
                                                "message": f"container {cs['name']} of pod "
                                                           f"{pod['metadata']['name']} exited with code "
                                                           f"{last['exitCode']}"}}
        if problem:
            return {"states": {"activeModelState": "FailedToLoad", "targetModelState": "Loaded"},
                    "transitionStatus": "InvalidSpec", "lastFailureInfo": {"reason": "NoSupportingRuntime",
                                                                           "message": problem}}
        return {"states": {"activeModelState": "Pending", "targetModelState": "Loaded"},
                "transitionStatus": "InProgress"}

    def _write_status(self, isvc: dict, statuses: list[tuple[dict, int, bool, bool, str]],
                      problems: dict[str, str]) -> None:
        meta = isvc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        primary = statuses[0]
        ready = primary[3]
        url = f"http://{name}.{ns}.svc.cluster.local"
        reason = None if ready else ("NoSupportingRuntime" if primary[4] in problems else "PredictorNotReady")
        message = problems.get(primary[4])

        def condition(type_: str, ok: bool) -> dict:
            return {"type": type_, "status": "True" if ok else "False", "lastTransitionTime": rfc3339(),
                    **({} if ok else {"reason": reason or "PredictorNotReady"}), **({"message": message}
                                                                                    if message and not ok else {})}
        status = {
            "observedGeneration": meta.get("generation", 1), "deploymentMode": "Standard", "url": url,
            "address": {"url": url},
            "components": {"predictor": {"url": url, "address": {"url": url}}},
            "conditions": [condition("IngressReady", True), condition("PredictorReady", ready),
                           condition("Ready", ready)],
            "modelStatus": self._model_status(ns, primary[4], ready, problems.get(primary[4])),
            "canaryStatuses": [
                {"name": p.get("name", ""), "ready": ok, "trafficPercent": percent,
                 "modelStatus": self._model_status(ns, dn, ok, problems.get(dn))}
                for p, percent, canary, ok, dn in statuses if canary],
        }
        if not status["canaryStatuses"]:
            del status["canaryStatuses"]
        self._write(isvc, status)

    def _write(self, isvc: dict, status: dict) -> None:
        """Write `status` unless only its timestamps would change."""
        meta = isvc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        old = isvc.get("status") or {}
        if {**old, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                  for c in old.get("conditions") or []]} == {
                **status, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                         for c in status["conditions"]]}:
            return

        def write(o: dict) -> None:
            o["status"] = status
        self.state.update_object("InferenceService", ns, name, write)


def split_traffic(latest: str | None, ready: dict[str, bool], rolled: str | None, previous: str | None,
                  percent: object) -> tuple[dict[str, int], str | None, str | None]:
    """(traffic by revision, the rolled-out revision, the one before it), as KServe routes a Serverless
    predictor: the first ready revision takes everything; a new one that is not ready takes nothing; a ready
    one takes canaryTrafficPercent, or everything without one (and is then the rolled-out revision)."""
    if latest is None:
        return {}, rolled, previous
    if rolled is None:
        return ({latest: 100}, latest, previous) if ready[latest] else ({}, None, previous)
    if latest == rolled or not ready[latest]:
        return {rolled: 100}, rolled, previous
    if percent is None or int(percent) >= 100:  # type: ignore[call-overload]
        return {latest: 100}, latest, rolled
    share = int(percent)  # type: ignore[call-overload]
    traffic = {r: p for r, p in {latest: share, rolled: 100 - share}.items() if p > 0}
    return traffic, rolled, previous
