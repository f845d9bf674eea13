"""The emulator's in-memory object store: pods, events, secrets, nodes, container logs, and the other
kinds (Deployments, Services, PodDisruptionBudgets, HorizontalPodAutoscalers, InferenceServices) in one
generic table keyed by kind.

One re-entrant lock guards everything, and one condition on it wakes whoever waits for a change (log
followers, watches, the node agent), so readers never see half-applied updates. Every write bumps a
cluster-wide resourceVersion and is appended to a short history, which is what watches replay.
"""

from __future__ import annotations

import copy
import secrets as _secrets
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Iterable

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet the real API server uses for generateName


class ApiError(Exception):
    """An error the server turns into a `Status` object with this HTTP code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}


def not_found(kind: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})


def rfc3339(ts: float | None = None) -> str:
    """Seconds precision, as Kubernetes writes object timestamps."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(ts: float) -> str:
    """Nanosecond layout of `kubectl logs --timestamps` (Python has microseconds; the rest is zeros)."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class State:
    """Thread-safe store. Methods return deep copies, so callers can never mutate stored objects."""

    def __init__(self, history: int = 20000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 0
        self.pods: dict[tuple[str, str], dict] = {}
        self.events: dict[tuple[str, str], dict] = {}
        self.secrets: dict[tuple[str, str], dict] = {}
        self.nodes: dict[str, dict] = {}
        self.logs: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
        self.previous_logs: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
        self.history: deque[tuple[int, str, str, dict]] = deque(maxlen=history)
        self.objects: dict[tuple[str, str, str], dict] = {}  # (Kind, namespace, name) -> object

    # -- bookkeeping -------------------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self.lock:
            return str(self._rv)

    def _touch(self, kind: str, change: str, obj: dict) -> None:
        """Give `obj` a new resourceVersion, remember the change for watches and wake waiters."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.history.append((self._rv, kind, change, copy.deepcopy(obj)))
        self.changed.notify_all()

    def _new_meta(self, meta: dict, namespace: str | None) -> dict:
        meta = dict(meta or {})
        if namespace is not None:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339()
        return meta

    def changes_since(self, rv: int) -> list[tuple[int, str, str, dict]]:
        """History entries newer than `rv`; callers hold the lock or accept a snapshot."""
        with self.lock:
            newer = []
            for entry in reversed(self.history):  # newest first: a waiter usually wants the last few
                if entry[0] <= rv:
                    break
                newer.append(entry)
            return newer[::-1]

    def oldest_remembered(self) -> int:
        with self.lock:
            return self.history[0][0] if self.history else self._rv

    # -- pods --------------------------------------------------------------------------------------------
    def create_pod(self, namespace: str, body: dict) -> dict:
        with self.lock:
            meta = body.setdefault("metadata", {})
            if not meta.get("name"):
                while True:
                    name = meta["generateName"] + "".join(_secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
                    if (namespace, name) not in self.pods:
                        break
                meta["name"] = name
            name = meta["name"]
            if (namespace, name) in self.pods:
                raise ApiError(409, "AlreadyExists", f'pods "{name}" already exists', {"name": name, "kind": "pods"})
            pod = copy.deepcopy(body)
            pod["metadata"] = self._new_meta(meta, namespace)
            self.pods[(namespace, name)] = pod
            self._touch("Pod", "ADDED", pod)
            return copy.deepcopy(pod)

    def get_pod(self, namespace: str, name: str) -> dict:
        with self.lock:
            if (namespace, name) not in self.pods:
                raise not_found("pods", name)
            return copy.deepcopy(self.pods[(namespace, name)])

    def find_pod(self, namespace: str, name: str) -> dict | None:
        with self.lock:
            pod = self.pods.get((namespace, name))
            return copy.deepcopy(pod) if pod else None

    def list_pods(self, namespace: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(p) for (ns, _), p in self.pods.items() if namespace in (None, ns)]

    def update_pod(self, namespace: str, name: str, mutate: Callable[[dict], object], *,
                   uid: str | None = None) -> dict:
        """Apply `mutate` to the stored pod under the lock. With `uid`, a pod recreated under the same
        name is left alone (the update was meant for its deleted predecessor)."""
        with self.lock:
            pod = self.pods.get((namespace, name))
            if pod is None or (uid and pod["metadata"]["uid"] != uid):
                raise not_found("pods", name)
            before = copy.deepcopy(pod)
            mutate(pod)
            if pod != before:
                self._touch("Pod", "MODIFIED", pod)
            return copy.deepcopy(pod)

    def replace_pod(self, namespace: str, name: str, new: dict) -> dict:
        def swap(pod: dict) -> None:
            kept = {k: pod["metadata"][k] for k in ("uid", "creationTimestamp", "namespace", "name")}
            pod.clear()
            pod.update(copy.deepcopy(new))
            pod["metadata"] = {**(pod.get("metadata") or {}), **kept}
        return self.update_pod(namespace, name, swap)

    def delete_pod(self, namespace: str, name: str) -> dict:
        with self.lock:
            pod = self.pods.pop((namespace, name), None)
            if pod is None:
                raise not_found("pods", name)
            pod["metadata"]["deletionTimestamp"] = rfc3339()
            pod["metadata"]["deletionGracePeriodSeconds"] = 0
            self._touch("Pod", "DELETED", pod)
            return copy.deepcopy(pod)

    # -- container logs ----------------------------------------------------------------------------------
    def append_log(self, namespace: str, pod: str, container: str, line: str, ts: float | None = None) -> None:
        with self.lock:
            self.logs.setdefault((namespace, pod, container), []).append((time.time() if ts is None else ts, line))
            self.changed.notify_all()

    def read_log(self, namespace: str, pod: str, container: str, start: int = 0) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.logs.get((namespace, pod, container), [])[start:])

    def rotate_log(self, namespace: str, pod: str, container: str) -> None:
        """The container restarts: its log so far becomes the previous instance's (`?previous=true`)."""
        with self.lock:
            self.previous_logs[(namespace, pod, container)] = self.logs.pop((namespace, pod, container), [])

    def read_previous_log(self, namespace: str, pod: str, container: str) -> list[tuple[float, str]] | None:
        with self.lock:
            found = self.previous_logs.get((namespace, pod, container))
            return list(found) if found is not None else None

    def drop_logs(self, namespace: str, pod: str) -> None:
        with self.lock:
            for logs in (self.logs, self.previous_logs):
                for key in [k for k in logs if k[:2] == (namespace, pod)]:
                    del logs[key]

    # -- events ------------------------------------------------------------------------------------------
    def record_event(self, pod: dict, reason: str, message: str, *, type_: str = "Normal",
                     component: str = "kubelet", field_path: str | None = None) -> dict:
        """Record a core/v1 Event about `pod`; a repeat of the same reason and message bumps `count`, as
        the real event recorder does."""
        meta = pod["metadata"]
        ns = meta["namespace"]
        with self.lock:
            for key, event in self.events.items():
                obj = event["involvedObject"]
                if (key[0] == ns and obj["uid"] == meta["uid"] and event["reason"] == reason
                        and event["message"] == message):
                    event["count"] += 1
                    event["lastTimestamp"] = rfc3339()
                    self._touch("Event", "MODIFIED", event)
                    return copy.deepcopy(event)
            now = rfc3339()
            self._event_clock = max(time.time_ns(), getattr(self, "_event_clock", 0) + 1)
            name = f"{meta['name']}.{self._event_clock:x}"  # like the kubelet's: names sort by time
            involved = {"kind": "Pod", "namespace": ns, "name": meta["name"], "uid": meta["uid"],
                        "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion", "")}
            if field_path:
                involved["fieldPath"] = field_path
            event = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": self._new_meta({"name": name}, ns),
                "involvedObject": involved, "reason": reason, "message": message, "type": type_,
                "source": {"component": component, **({"host": pod["spec"]["nodeName"]}
                                                       if pod.get("spec", {}).get("nodeName") else {})},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": component, "reportingInstance": "emulator",
            }
            self.events[(ns, name)] = event
            self._touch("Event", "ADDED", event)
            return copy.deepcopy(event)

    def list_events(self, namespace: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(e) for (ns, _), e in self.events.items() if namespace in (None, ns)]

    # -- secrets -----------------------------------------------------------------------------------------
    def create_secret(self, namespace: str, body: dict) -> dict:
        with self.lock:
            name = (body.get("metadata") or {}).get("name")
            if (namespace, name) in self.secrets:
                raise ApiError(409, "AlreadyExists", f'secrets "{name}" already exists',
                               {"name": name, "kind": "secrets"})
            secret = copy.deepcopy(body)
            secret["metadata"] = self._new_meta(secret.get("metadata"), namespace)
            self.secrets[(namespace, name)] = secret
            self._touch("Secret", "ADDED", secret)
            return copy.deepcopy(secret)

    def get_secret(self, namespace: str, name: str) -> dict:
        with self.lock:
            if (namespace, name) not in self.secrets:
                raise not_found("secrets", name)
            return copy.deepcopy(self.secrets[(namespace, name)])

    def find_secret(self, namespace: str, name: str) -> dict | None:
        with self.lock:
            secret = self.secrets.get((namespace, name))
            return copy.deepcopy(secret) if secret else None

    def list_secrets(self, namespace: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(s) for (ns, _), s in self.secrets.items() if namespace in (None, ns)]

    def delete_secret(self, namespace: str, name: str) -> dict:
        with self.lock:
            secret = self.secrets.pop((namespace, name), None)
            if secret is None:
                raise not_found("secrets", name)
            self._touch("Secret", "DELETED", secret)
            return copy.deepcopy(secret)

    # -- nodes -------------------------------------------------------------------------------------------
    def add_nodes(self, nodes: Iterable[dict]) -> None:
        with self.lock:
            for node in nodes:
                node = copy.deepcopy(node)
                node["metadata"] = self._new_meta(node["metadata"], None)
                self.nodes[node["metadata"]["name"]] = node
                self._touch("Node", "ADDED", node)

    def list_nodes(self) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(n) for n in self.nodes.values()]


    # -- other kinds ---------------------------------------------------------------------------------------
    # Deployments, Services and the rest: one table keyed by Kind. `metadata.generation` counts changes to
    # anything but status and metadata, as the API server does, so controllers can report observedGeneration.
    def create_object(self, kind: str, namespace: str, body: dict) -> dict:
        with self.lock:
            meta = body.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(_secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
            key = (kind, namespace, meta.get("name", ""))
            if key in self.objects:
                plural = kind.lower() + "s"
                raise ApiError(409, "AlreadyExists", f'{plural} "{key[2]}" already exists',
                               {"name": key[2], "kind": plural})
            obj = copy.deepcopy(body)
            obj["metadata"] = {**self._new_meta(meta, namespace or None), "generation": 1}  # "": cluster-scoped
            self.objects[key] = obj
            self._touch(kind, "ADDED", obj)
            return copy.deepcopy(obj)

    def find_object(self, kind: str, namespace: str, name: str) -> dict | None:
        with self.lock:
            obj = self.objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def get_object(self, kind: str, namespace: str, name: str) -> dict:
        found = self.find_object(kind, namespace, name)
        if found is None:
            raise not_found(kind.lower() + "s", name)
        return found

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items() if k == kind and namespace in (None, ns)]

    def update_object(self, kind: str, namespace: str, name: str, mutate: Callable[[dict], object]) -> dict:
        with self.lock:
            obj = self.objects.get((kind, namespace, name))
            if obj is None:
                raise not_found(kind.lower() + "s", name)
            before = copy.deepcopy(obj)
            mutate(obj)
            for key in ("uid", "creationTimestamp", "namespace", "name"):
                if key in before["metadata"]:
                    obj["metadata"][key] = before["metadata"][key]
            if obj != before:
                spec_of = {k: v for k, v in before.items() if k not in ("status", "metadata")}
                if {k: v for k, v in obj.items() if k not in ("status", "metadata")} != spec_of:
                    obj["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
                else:
                    obj["metadata"]["generation"] = before["metadata"].get("generation", 1)
                self._touch(kind, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete_object(self, kind: str, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.objects.pop((kind, namespace, name), None)
            if obj is None:
                raise not_found(kind.lower() + "s", name)
            obj["metadata"]["deletionTimestamp"] = rfc3339()
            self._touch(kind, "DELETED", obj)
            return copy.deepcopy(obj)
