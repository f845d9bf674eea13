"""The kubernetes backend: a model's versions as Deployments behind the model's Service (manifests.py), in
the cluster an API client reaches (the plugin passes the cncf-kubernetes hook's client; no kubectl).

Blue/green with the same steps as the local backend: the candidate Deployment starts with one pod outside
the model's Service and is reached through its own Service for the smoke test and the shadow bake; the
switch relabels its pod template into the Service and scales it to the spec's replicas (a rolling update
with maxUnavailable 0: its pods join as they become ready, beside the old version's); retiring deletes the
old version's objects, whose pods drain (SIGTERM, the server's pre-stop, terminationGracePeriodSeconds).

The platform reaches pods through the API server's service and pod proxies, so a deploy task needs no
route into the cluster network: only the API access the RBAC in deploy/k8s grants.
"""

from __future__ import annotations

import re
import time
from typing import Any

from mlops.serving import endpoint, manifests
from mlops.serving.manifests import LABEL_ROLLOUT, LABEL_TRAFFIC, LABEL_VERSION
from mlops.settings import Settings
from mlops.spec import ModelSpec

CRASHES_TOLERATED = 2  # a container that failed to start this many times is judged broken
# Waiting reasons that will not fix themselves while the rollout waits.
_STUCK = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
          "CreateContainerError"}


class KubernetesBackend:
    name = "kubernetes"

    protocol: Any = endpoint.MLFLOW
    server_container, fetch_container = manifests.SERVER, manifests.FETCH  # the pods' container names

    def __init__(self, settings: Settings, spec: ModelSpec, api_client: Any):
        from kubernetes import client

        from mlops.compute import catalogue_path, load_catalogue

        assert spec.serving is not None, f"{spec.name} has no serving section"
        if api_client is None:
            raise RuntimeError(f"{spec.name}: serving.backend kubernetes needs a Kubernetes API client (the deploy "
                               "DAG passes the one of its kubernetes connection, MLOPS_K8S_CONN_ID)")
        self.settings, self.spec, self.serving = settings, spec, spec.serving
        self.api = api_client
        self.core, self.apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        self.policy, self.autoscaling = client.PolicyV1Api(api_client), client.AutoscalingV2Api(api_client)
        self.ns = settings.kubernetes.namespace
        self.catalogue = load_catalogue(catalogue_path(settings.compute_dir))

    # --- talking to the cluster -------------------------------------------------------------------------
    def session(self) -> Any:
        """An HTTP session that carries the API client's credentials, for the API server's proxies."""
        cfg = self.api.configuration
        s = endpoint.session()
        auth = (cfg.auth_settings() or {}).get("BearerToken") or {}
        if auth.get("value"):
            s.headers[auth.get("key", "authorization")] = auth["value"]
        s.verify = cfg.ssl_ca_cert if cfg.ssl_ca_cert else bool(cfg.verify_ssl)
        if cfg.cert_file:
            s.cert = (cfg.cert_file, cfg.key_file)
        return s

    def _service_url(self, name: str) -> str:
        return f"{self.api.configuration.host}/api/v1/namespaces/{self.ns}/services/{name}:http/proxy"

    def _pod_url(self, pod: str) -> str:
        return f"{self.api.configuration.host}/api/v1/namespaces/{self.ns}/pods/{pod}:{manifests.PORT}/proxy"

    def _apply(self, obj: dict[str, Any]) -> None:
        """Create, or bring an existing object to this manifest (a retried task)."""
        from kubernetes.client.exceptions import ApiException

        kind, name = obj["kind"], obj["metadata"]["name"]
        create, patch = {
            "Service": (self.core.create_namespaced_service, self.core.patch_namespaced_service),
            "Deployment": (self.apps.create_namespaced_deployment, self.apps.patch_namespaced_deployment),
            "PodDisruptionBudget": (self.policy.create_namespaced_pod_disruption_budget,
                                    self.policy.patch_namespaced_pod_disruption_budget),
            "HorizontalPodAutoscaler": (self.autoscaling.create_namespaced_horizontal_pod_autoscaler,
                                        self.autoscaling.patch_namespaced_horizontal_pod_autoscaler),
        }[kind]
        try:
            create(self.ns, obj)
        except ApiException as exc:
            if exc.status != 409:
                raise
            patch(name, self.ns, obj)

    def _deployments(self) -> list[Any]:
        items = self.apps.list_namespaced_deployment(self.ns, label_selector=manifests.model_selector(self.spec)).items
        return sorted(items, key=lambda d: d.metadata.creation_timestamp or 0)

    def _mine(self, tag: str) -> Any | None:
        return next((d for d in self._deployments() if d.metadata.labels.get(LABEL_ROLLOUT) == tag), None)

    @staticmethod
    def _serves(d: Any) -> bool:
        return bool((d.spec.template.metadata.labels or {}).get(LABEL_TRAFFIC) == "true" and d.spec.replicas)

    # --- what serves ------------------------------------------------------------------------------------
    def endpoint(self) -> str | None:
        """The address clients in the cluster call, once a version serves."""
        if not any(self._serves(d) for d in self._deployments()):
            return None
        return f"http://{manifests.service_name(self.spec)}.{self.ns}.svc.cluster.local"

    def stable_url(self) -> str:
        """Where the platform itself reaches what serves (the bake's shadow, smoke of a restore)."""
        return self._service_url(manifests.service_name(self.spec))

    def serving_versions(self) -> list[str]:
        return sorted({d.metadata.labels[LABEL_VERSION] for d in self._deployments() if self._serves(d)})

    def begin_bake(self, tag: str) -> None:
        """Nothing to do: the bake is a shadow one, the candidate takes no live traffic before the switch."""

    def status(self) -> dict[str, Any]:
        serving = [d for d in self._deployments() if self._serves(d)]
        return {"backend": self.name, "endpoint": self.endpoint(), "versions": self.serving_versions(),
                "replicas": sum(d.spec.replicas for d in serving) or self.serving.replicas,
                "replicas_ready": sum((d.status.ready_replicas or 0) for d in serving)}

    # --- readiness --------------------------------------------------------------------------------------
    def _pods(self, tag: str) -> list[dict[str, Any]]:
        """The rollout's live pods (not terminating), as the API returns them."""
        from mlops.podplan import LABEL_MODEL

        selector = f"{LABEL_MODEL}={self.spec.name},{LABEL_ROLLOUT}={tag}"
        pods = self.core.list_namespaced_pod(self.ns, label_selector=selector).items
        return [self.api.sanitize_for_serialization(p) for p in pods if p.metadata.deletion_timestamp is None]

    def _log_tail(self, pod: str, container: str) -> list[str]:
        """The last 20 lines of the container's previous (else current) log, with its last error line put first
        when a server's shutdown chatter has pushed it out of those 20."""
        from kubernetes.client.exceptions import ApiException

        for previous in (True, False):
            try:
                text = self.core.read_namespaced_pod_log(pod, self.ns, container=container, previous=previous,
                                                         tail_lines=200)
            except ApiException:
                continue
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            lines = str(text or "").splitlines()
            if not lines:
                continue
            tail = lines[-20:]
            errors = [line for line in lines if re.search(r"(Error|Exception)\b", line)]
            if errors and errors[-1] not in tail:
                tail = [errors[-1], "..."] + tail
            return tail
        return []

    def pod_problem(self, pod: dict[str, Any]) -> str | None:
        """Why this pod will not become ready on its own (None while it may): a crash with its last log
        lines, an image that cannot be pulled, an out-of-memory kill. An unschedulable pod is not judged
        here: GPU nodes take minutes to scale up, so it fails at the readiness timeout with the scheduler's
        message."""
        from mlops.podfailure import classify

        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cs, container in ([(c, c["name"]) for c in status.get("initContainerStatuses") or []]
                              + [(c, c["name"]) for c in status.get("containerStatuses") or []]):
            state = cs.get("state") or {}
            if "running" in state:  # whatever happened before, it runs now: readiness will tell
                continue
            waiting = state.get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or state.get("terminated") or {}
            if waiting.get("reason") in _STUCK:
                failure = classify(pod, pool=self.serving.pool, container=container)
                if failure.reason == "image_pull":
                    return (f"container '{container}' of pod {name} cannot pull its image {cs.get('image')} "
                            f"({waiting['reason']}: {waiting.get('message', '')}); check MLOPS_SERVING_IMAGE and "
                            "the pull secret")
                return f"container '{container}' of pod {name} cannot start: {waiting['reason']}: " \
                       f"{waiting.get('message', '')}"
            if last.get("reason") == "OOMKilled":
                return (f"container '{container}' of pod {name} was OOMKilled at its memory limit "
                        f"{self.serving.resources.memory}; raise serving.resources.memory in the spec")
            if waiting.get("reason") == "CrashLoopBackOff" and cs.get("restartCount", 0) < CRASHES_TOLERATED:
                continue  # one failed start may be transient (a registry hiccup while fetching the model)
            if last.get("exitCode") not in (None, 0) or (last and container == self.server_container):
                what = "could not fetch the model" if container == self.fetch_container else "crashed at start"
                tail = "\n".join(f"  | {line}" for line in self._log_tail(name, container)) or "  | (no output)"
                return (f"container '{container}' of pod {name} {what} (exit code {last.get('exitCode')}, "
                        f"restarted {cs.get('restartCount', 0)} time(s)); the last lines of its log:\n{tail}")
        return None

    def why_slow(self, pods: list[dict[str, Any]]) -> str:
        """What kept pods from readiness at the timeout: the scheduler's reason, or a probe timeout."""
        unscheduled = self._scheduling(pods)
        if unscheduled:
            return unscheduled.removeprefix("; ") + "; check the pool's capacity and autoscaling"
        if not pods:
            return "no pod was created; check the namespace's quota and the Deployment's events"
        return "probe timeout: no ready answer from /health; raise serving.timeouts.ready_seconds if the model " \
               "loads slowly"

    def _scheduling(self, pods: list[dict[str, Any]]) -> str:
        for pod in pods:
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                    return (f"; pod {pod['metadata']['name']} could not be scheduled in pool '{self.serving.pool}': "
                            f"{cond.get('message') or cond.get('reason')}")
        return ""

    def _wait(self, name: str, tag: str, replicas: int, what: str) -> float:
        """Seconds until the Deployment `name` has `replicas` updated, ready pods and no old ones."""
        start = time.monotonic()
        while True:
            d = self.apps.read_namespaced_deployment(name, self.ns)
            s = d.status
            # at least `replicas` (an autoscaler may have added more) and no pod of an older template left
            if ((s.observed_generation or 0) >= (d.metadata.generation or 0) and (s.updated_replicas or 0) >= replicas
                    and (s.ready_replicas or 0) >= replicas and (s.replicas or 0) == (s.updated_replicas or 0)):
                return time.monotonic() - start
            pods = self._pods(tag)
            for pod in pods:
                problem = self.pod_problem(pod)
                if problem:
                    raise endpoint.NotReady(f"{what} did not become ready: {problem}")
            if time.monotonic() - start > self.serving.timeouts.ready_seconds:
                raise endpoint.NotReady(
                    f"{what} did not become ready: {s.ready_replicas or 0} of {replicas} pod(s) of Deployment "
                    f"{self.ns}/{name} ready after {self.serving.timeouts.ready_seconds} s ({self.why_slow(pods)})")
            time.sleep(0.2)

    # --- rollout steps ------------------------------------------------------------------------------------
    def _deployment(self, version: str, tag: str, *, traffic: bool, replicas: int) -> dict[str, Any]:
        return manifests.deployment(self.spec, self.settings, self.catalogue, self.ns, version, tag,
                                    traffic=traffic, replicas=replicas)

    def start_candidate(self, version: str, tag: str, previous: tuple[str, str] | None = None) -> dict[str, Any]:
        """The version's own Deployment (one pod) and Service, outside the model's Service; ready or why not."""
        self.abort(tag)  # leftovers of an earlier try of this rollout
        name = manifests.version_name(self.spec, version, tag)
        # the Deployment first: abort and retire find a rollout's objects through it
        self._apply(self._deployment(version, tag, traffic=False, replicas=1))
        self._apply(manifests.version_service(self.spec, self.ns, version, tag))
        handle: dict[str, Any] = {"version": version, "ids": [name], "url": self._service_url(name)}
        try:
            handle["ready_seconds"] = self._wait(name, tag, 1, f"{self.spec.name} v{version}")
        except endpoint.NotReady:
            self.abort(tag)
            raise
        return handle

    def candidate_problem(self, url: str) -> str | None:
        name = url.rsplit("/services/", 1)[-1].split(":", 1)[0]
        from kubernetes.client.exceptions import ApiException

        try:
            d = self.apps.read_namespaced_deployment(name, self.ns)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return (f"the candidate Deployment {self.ns}/{name} is gone (its rollout was rolled back); clear "
                    "start_candidate to start it again")
        if not d.status.ready_replicas:
            tag = d.metadata.labels.get(LABEL_ROLLOUT, "")
            problems = [p for p in (self.pod_problem(pod) for pod in self._pods(tag)) if p]
            return f"the candidate {self.ns}/{name} has no ready pod" + (f": {problems[0]}" if problems else "")
        return None

    def switch(self, version: str, tag: str) -> dict[str, Any]:
        """The candidate's pods into the model's Service, at the spec's replicas, each ready, beside the old
        version's (which serve until retire). Idempotent: a cleared task re-applies and waits."""
        name = manifests.version_name(self.spec, version, tag)
        self._apply(manifests.model_service(self.spec, self.ns))
        self._apply(manifests.disruption_budget(self.spec, self.ns, version, tag))
        current = self._mine(tag)  # a retried switch keeps what an autoscaler chose since
        replicas = max(self.serving.replicas, current.spec.replicas or 0) if current is not None and \
            current.metadata.labels and self.serving.autoscaling is not None else self.serving.replicas
        self._apply(self._deployment(version, tag, traffic=True, replicas=replicas))
        self._wait(name, tag, self.serving.replicas,
                   f"{self.spec.name} v{version} ({self.serving.replicas} replica(s))")
        hpa = manifests.autoscaler(self.spec, self.ns, version, tag)
        if hpa is not None:
            self._apply(hpa)
        pods = [p["metadata"]["name"] for p in self._pods(tag)]
        return {"version": version, "ids": [name], "urls": [self._pod_url(p) for p in pods],
                "endpoint": self.endpoint()}

    def _delete_rollout(self, deployment: Any) -> None:
        """A rollout's Deployment (its pods drain), Service, budget and autoscaler."""
        from kubernetes.client.exceptions import ApiException

        name = deployment.metadata.name
        for delete in (self.autoscaling.delete_namespaced_horizontal_pod_autoscaler,
                       self.policy.delete_namespaced_pod_disruption_budget, self.core.delete_namespaced_service,
                       self.apps.delete_namespaced_deployment):
            try:
                delete(name, self.ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def _wait_gone(self, tags: set[str]) -> None:
        """Until the deleted rollouts' pods have drained and ended (bounded by the grace period)."""
        from mlops.podplan import LABEL_MODEL

        deadline = time.monotonic() + self.serving.timeouts.drain_seconds + manifests.PRESTOP_SECONDS + 30
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(self.ns, label_selector=f"{LABEL_MODEL}={self.spec.name}").items
            if not any((p.metadata.labels or {}).get(LABEL_ROLLOUT) in tags for p in pods):
                return
            time.sleep(0.2)

    def retire(self, tag: str) -> list[str]:
        """Delete every rollout of the model but this one: the version that served before, and candidates an
        interrupted rollout left. Returns the versions that stopped serving."""
        old = [d for d in self._deployments() if d.metadata.labels.get(LABEL_ROLLOUT) != tag]
        for d in old:
            self._delete_rollout(d)
        self._wait_gone({d.metadata.labels.get(LABEL_ROLLOUT) for d in old})
        mine = self._mine(tag)
        kept = {mine.metadata.labels[LABEL_VERSION]} if mine is not None else set()
        return sorted({d.metadata.labels[LABEL_VERSION] for d in old if self._serves(d)} - kept)

    def abort(self, tag: str, previous: tuple[str, str] | None = None) -> list[str]:
        """Delete what this rollout created; what served before keeps serving. The model's Service goes too
        when nothing else serves behind it (a failed first rollout leaves nothing). The version that served
        before is never touched here (only retire deletes it), so `previous` is not needed."""
        from kubernetes.client.exceptions import ApiException

        mine = [d for d in self._deployments() if d.metadata.labels.get(LABEL_ROLLOUT) == tag]
        for d in mine:
            self._delete_rollout(d)
        if not any(self._serves(d) for d in self._deployments() if d.metadata.labels.get(LABEL_ROLLOUT) != tag):
            try:
                self.core.delete_namespaced_service(manifests.service_name(self.spec), self.ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        self._wait_gone({tag})
        return [d.metadata.name for d in mine]

