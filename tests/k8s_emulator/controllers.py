"""The controller manager's part the serving tests need: Deployments, garbage collection, and KServe's
InferenceService controller (kserve.py).

A Deployment's pods are created from its template (labels plus `pod-template-hash`, named
`<deployment>-<hash>-<suffix>`) and owned by the Deployment itself: ReplicaSets are not materialised, the
template hash plays their part. A changed template rolls out as the RollingUpdate strategy says
(maxSurge rounded up, maxUnavailable rounded down, readiness from the pods' Ready condition;
`Recreate` deletes the old pods first). Status carries replicas, updatedReplicas, readyReplicas,
availableReplicas, unavailableReplicas, observedGeneration and the Available and Progressing conditions.
Pods whose owning Deployment is gone are deleted (gracefully, as workload pods are), as the garbage
collector does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
import traceback

from . import selectors as sel
from .kserve import InferenceServiceController
from .state import ApiError, State, rfc3339
from .validation import default_pod

_HASH_LABEL = "pod-template-hash"


def template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def _scaled(value: object, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = replicas * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)  # type: ignore[call-overload]


def rolling_bounds(deployment: dict, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers; both zero is not allowed, so unavailable becomes 1."""
    rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


class ControllerManager(threading.Thread):
    def __init__(self, state: State, agent, *, tick: float = 0.05):
        super().__init__(daemon=True, name="k8s-emulator-controllers")
        self.state, self.agent, self.tick = state, agent, tick
        self.inference_services = InferenceServiceController(state)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - a bug in one pass must not stop the controllers
                traceback.print_exc()
            self._halt.wait(self.tick)

    def reconcile(self) -> None:
        self.inference_services.reconcile()
        deployments = self.state.list_objects("Deployment")
        pods = self.state.list_pods()
        owners = {d["metadata"]["uid"] for d in deployments}
        for pod in pods:  # the garbage collector
            refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "Deployment"]
            if refs and refs[0]["uid"] not in owners and not pod["metadata"].get("deletionTimestamp"):
                self.delete_pod(pod)
        for deployment in deployments:
            try:
                mine = [p for p in pods if any(r.get("uid") == deployment["metadata"]["uid"]
                                               for r in p["metadata"].get("ownerReferences") or [])]
                self._deployment(deployment, mine)
            except ApiError:  # changed or deleted meanwhile: the next pass sees it
                continue

    def delete_pod(self, pod: dict) -> None:
        """Graceful, as `DELETE pod` is for a workload pod."""
        self.delete_pod_with_grace(pod, float(pod["spec"].get("terminationGracePeriodSeconds", 30)))

    def delete_pod_with_grace(self, pod: dict, grace: float) -> None:
        meta = pod["metadata"]

        def mark(p: dict) -> None:
            p["metadata"]["deletionTimestamp"] = rfc3339()
            p["metadata"]["deletionGracePeriodSeconds"] = int(grace)
        try:
            marked = self.state.update_pod(meta["namespace"], meta["name"], mark, uid=meta["uid"])
        except ApiError:
            return
        self.agent.terminate(marked, grace)

    # -- one Deployment ----------------------------------------------------------------------------------
    def _deployment(self, deployment: dict, pods: list[dict]) -> None:
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        current = template_hash(spec["template"])
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        new = [p for p in live if (p["metadata"].get("labels") or {}).get(_HASH_LABEL) == current]
        old = [p for p in live if p not in new]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        surge, unavailable = (0, replicas) if recreate else rolling_bounds(deployment, replicas)
        if not spec.get("paused"):
            if recreate and old:
                for pod in old:
                    self.delete_pod(pod)
            elif not (recreate and any(p["metadata"].get("deletionTimestamp") for p in pods)):
                for _ in range(max(0, min(replicas - len(new), replicas + surge - len(new) - len(old)))):
                    new.append(self._create_pod(deployment, current))
            ready = sum(_ready(p) for p in new + old)
            minimum = replicas - unavailable
            for pod in sorted(old, key=_ready):  # unready ones first: they serve nothing
                if not _ready(pod):
                    self.delete_pod(pod)
                elif ready - 1 >= minimum:
                    self.delete_pod(pod)
                    ready -= 1
            extra = len(new) - replicas
            for pod in sorted(new, key=_ready)[:max(0, extra)]:
                self.delete_pod(pod)
        self._write_status(deployment, replicas, unavailable, current)

    def _create_pod(self, deployment: dict, current: str) -> dict:
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            **(template.get("metadata") or {}),
            "generateName": f"{meta['name']}-{current}-", "namespace": meta["namespace"],
            "labels": {**((template.get("metadata") or {}).get("labels") or {}), _HASH_LABEL: current},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
               "spec": template["spec"]}
        default_pod(pod)
        return self.state.create_pod(meta["namespace"], pod)

    def _write_status(self, deployment: dict, replicas: int, unavailable: int, current: str) -> None:
        meta = deployment["metadata"]
        pods = [p for p in self.state.list_pods(meta["namespace"])
                if any(r.get("uid") == meta["uid"] for r in p["metadata"].get("ownerReferences") or [])
                and not p["metadata"].get("deletionTimestamp")]
        updated = [p for p in pods if p["metadata"]["labels"].get(_HASH_LABEL) == current]
        ready = sum(_ready(p) for p in pods)
        complete = len(updated) == replicas == len(pods) and all(_ready(p) for p in updated)
        available = ready >= replicas - unavailable
        status = {
            "observedGeneration": meta.get("generation", 1), "replicas": len(pods), "updatedReplicas": len(updated),
            "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": max(0, replicas - ready),
            "conditions": [
                {"type": "Available", "status": "True" if available else "False",
                 "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if available
                 else "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                 "message": f'ReplicaSet "{meta["name"]}-{current}" '
                            + ("has successfully progressed." if complete else "is progressing.")}],
        }
        for key in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"):
            if not status[key]:
                del status[key]  # the API server omits zero counts
        old = deployment.get("status") or {}
        if _comparable(old) != _comparable(status):
            stamp = rfc3339()
            for cond in status["conditions"]:
                before = next((c for c in old.get("conditions") or [] if c["type"] == cond["type"]), None)
                same = before and before["status"] == cond["status"] and before.get("reason") == cond["reason"]
                cond["lastTransitionTime"] = before["lastTransitionTime"] if same else stamp
                cond["lastUpdateTime"] = stamp

            def write(d: dict) -> None:
                d["status"] = status
            self.state.update_object("Deployment", meta["namespace"], meta["name"], write)


def _comparable(status: dict) -> dict:
    return {**status, "conditions": [{k: v for k, v in c.items() if not k.startswith("last")}
                                     for c in status.get("conditions") or []]}


def endpoints(state: State, agent, service: dict, port: object) -> list[tuple[dict, int]]:
    """(pod, host port) of each ready, not terminating pod the Service selects, for the Service port
    `port` (its name or number; None for the first)."""
    ports = service["spec"].get("ports") or []
    chosen = next((p for p in ports if port in (None, p.get("name"), str(p.get("port")), p.get("port"))), None)
    if chosen is None:
        return []
    target = chosen.get("targetPort", chosen["port"])
    selector = service["spec"].get("selector") or {}
    if not selector:
        return []
    wanted = sel.parse_labels(",".join(f"{k}={v}" for k, v in selector.items()))
    found = []
    for pod in state.list_pods(service["metadata"]["namespace"]):
        if pod["metadata"].get("deletionTimestamp") or not _ready(pod):
            continue
        if not sel.labels_match(wanted, pod["metadata"].get("labels")):
            continue
        rt = agent.runtime(pod["metadata"]["uid"])
        host = rt.host_port(target) if rt else None
        if host is not None:
            found.append((pod, host))
    return found
