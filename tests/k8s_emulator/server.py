"""The emulated API server: the core/v1 endpoints the Kubernetes clients and Airflow's provider call.

Served over HTTP/1.1, or HTTPS with a throwaway CA (see tls.py), optionally only to known bearer tokens
(keep-alive, chunked streams for `follow` logs and watches, a WebSocket
upgrade for exec), JSON only. Errors are `Status` objects with the real codes and reasons, since the
clients and the provider branch on them (404 on a deleted pod, 409 on a name clash, 422 on a bad spec,
410 on a watch that asked for a resourceVersion the server has forgotten).

Routes (namespaced ones also as cluster-wide lists where the real API has them):
  GET /version, /api, /apis
  GET /api/v1/nodes[/{name}]                GET /api/v1/namespaces[/{ns}]
  GET|POST|DELETE /api/v1/namespaces/{ns}/pods   GET /api/v1/pods   (?watch=true too)
  GET|PATCH|PUT|DELETE /api/v1/namespaces/{ns}/pods/{name}[/status]
  GET /api/v1/namespaces/{ns}/pods/{name}/log    GET|POST .../exec (WebSocket)
  GET /api/v1/[namespaces/{ns}/]events      GET /apis/events.k8s.io/v1/[namespaces/{ns}/]events
  GET|POST /api/v1/namespaces/{ns}/secrets  GET|DELETE .../secrets/{name}   GET /api/v1/secrets
  GET|POST|PUT|PATCH|DELETE, watch too, for the kinds in KINDS (see workload_kinds.py):
    /api/v1/namespaces/{ns}/services[/{name}[/status]]
    /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]   (deployments, ...)
  * /api/v1/namespaces/{ns}/services/{name}[:{port}]/proxy/{path}   to a ready endpoint, round robin
  * /api/v1/namespaces/{ns}/pods/{name}[:{port}]/proxy/{path}
"""

from __future__ import annotations

import base64
import copy
import json
import re
import ssl
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import patch as patching
from . import selectors as sel
from . import status as st
from . import websocket as ws
from .controllers import endpoints
from .exec import ExecSession
from .kserve import TRAFFIC_ANNOTATION
from .rbac import attributes
from .runtime import container_env
from .state import ApiError, State, not_found, rfc3339_nano
from .validation import default_pod, invalid, validate_pod
from .workload_kinds import KINDS, default_object, validate_object

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "emulator", "gitTreeState": "clean",
           "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"}
_ROUTES: list[tuple[str, re.Pattern, str]] = []


def route(method: str, pattern: str):
    """Register a handler method for `method` on paths matching `pattern` (named groups become kwargs)."""
    def register(fn):
        for m in method.split("|"):
            _ROUTES.append((m, re.compile(f"^{pattern}/?$"), fn.__name__))
        return fn
    return register


NS = r"/api/v1/namespaces/(?P<ns>[^/]+)"
POD = NS + r"/pods/(?P<name>[^/]+)"


def events_v1(event: dict) -> dict:
    """A core/v1 Event as events.k8s.io/v1 presents it."""
    micro = event["firstTimestamp"].replace("Z", ".000000Z")
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": event["metadata"],
            "eventTime": micro, "reportingController": event["reportingComponent"],
            "reportingInstance": event["reportingInstance"], "action": event["reason"], "reason": event["reason"],
            "regarding": event["involvedObject"], "note": event["message"], "type": event["type"],
            "deprecatedSource": event["source"], "deprecatedFirstTimestamp": event["firstTimestamp"],
            "deprecatedLastTimestamp": event["lastTimestamp"], "deprecatedCount": event["count"]}


EVENTS_V1_FIELDS = {"metadata.name", "metadata.namespace", "regarding.kind", "regarding.name", "regarding.namespace",
                    "regarding.uid", "reason", "reportingController", "type"}


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: State, agent, host: str = "127.0.0.1", port: int = 0, *,
                 tls_context: ssl.SSLContext | None = None, tokens: set[str] | None = None):
        super().__init__((host, port), Handler)
        self.scheme = "https" if tls_context else "http"
        if tls_context:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)
        # Bearer tokens accepted (None: any request is let in); and who came with which token.
        self.tokens = tokens
        self.tokens_seen: set[str] = set()
        self.state, self.agent = state, agent
        self.stopping = threading.Event()
        self.sessions: set[ExecSession] = set()
        self.sessions_lock = threading.Lock()
        self.controllers = None  # the ControllerManager, set by the Cluster
        self.turns: dict[tuple[str, str], int] = {}  # round robin of each Service's proxy
        self.authorized: list[tuple[str, str, str]] = []  # (apiGroup, resource, verb) of each request: rbac.py

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def stop(self) -> None:
        self.stopping.set()
        with self.state.changed:
            self.state.changed.notify_all()  # wake log followers and watches so they end their streams
        self.shutdown()
        with self.sessions_lock:
            for session in list(self.sessions):
                session.terminate()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: tests read the state instead
        pass

    # -- plumbing ----------------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    @property
    def state(self) -> State:
        return self.server.state

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if token:
            self.server.tokens_seen.add(token)
        if self.server.tokens is not None and token not in self.server.tokens:
            self._status(ApiError(401, "Unauthorized", "Unauthorized"))
            return
        needs = attributes(method, url.path, self.flag("watch"))
        if needs is not None:
            self.server.authorized.append(needs)
        path_known = False
        for m, pattern, name in _ROUTES:
            match = pattern.match(url.path)
            if not match:
                continue
            path_known = True
            if m != method:
                continue
            self.streaming = False
            try:
                getattr(self, name)(**match.groupdict())
            except ApiError as exc:
                self._status(exc)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as exc:  # noqa: BLE001 - an emulator bug must reach the test as a 500, not a hang
                if self.streaming:
                    raise
                self._status(ApiError(500, "InternalError", f"emulator error: {exc!r}"))
            return
        if path_known:
            self._status(ApiError(405, "MethodNotAllowed",
                                  "the server does not allow this method on the requested resource"))
        else:
            self._status(ApiError(404, "NotFound", "the server could not find the requested resource"))

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.q(name) or "").lower() in ("true", "1")

    def body(self) -> object:
        ctype = (self.headers.get("Content-Type") or "application/json").lower()
        if "yaml" in ctype or "protobuf" in ctype or "cbor" in ctype:
            raise ApiError(415, "UnsupportedMediaType", f"the emulator only accepts JSON bodies, not {ctype}")
        try:
            return json.loads(self.raw_body or b"null")
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid JSON body: {exc}") from None

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, code: int, obj: object) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _status(self, exc: ApiError) -> None:
        self._json(exc.code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": exc.message, "reason": exc.reason, "details": exc.details, "code": exc.code})

    def _start_stream(self, content_type: str) -> None:
        self.streaming = True
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _list(self, kind: str, items: list[dict]) -> None:
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        self._json(200, {"kind": f"{kind}List", "apiVersion": "v1",
                         "metadata": {"resourceVersion": self.state.resource_version}, "items": items})

    # -- discovery ---------------------------------------------------------------------------------------
    @route("GET", r"/version")
    def version(self):
        self._json(200, VERSION)

    @route("GET", r"/api")
    def api_versions(self):
        self._json(200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server.url.split("://")[1]}]})

    @route("GET", r"/apis")
    def api_groups(self):
        groups = {"events.k8s.io": "v1", **{k.group: k.version for k in KINDS.values() if k.group}}
        self._json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
             "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in sorted(groups.items())]})

    # -- nodes and namespaces ----------------------------------------------------------------------------
    @route("GET", r"/api/v1/nodes")
    def list_nodes(self):
        reqs = sel.parse_labels(self.q("labelSelector"))
        self._list("Node", [n for n in self.state.list_nodes() if sel.labels_match(reqs, n["metadata"].get("labels"))])

    @route("GET", r"/api/v1/nodes/(?P<name>[^/]+)")
    def read_node(self, name):
        node = next((n for n in self.state.list_nodes() if n["metadata"]["name"] == name), None)
        if node is None:
            raise not_found("nodes", name)
        self._json(200, node)

    def _namespace(self, ns: str) -> dict:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    @route("GET", r"/api/v1/namespaces")
    def list_namespaces(self):
        names = {"default", "kube-system"} | {p["metadata"]["namespace"] for p in self.state.list_pods()}
        self._list("Namespace", [self._namespace(ns) for ns in names])

    @route("GET", NS)
    def read_namespace(self, ns):
        self._json(200, self._namespace(ns))  # every namespace exists

    # -- pods --------------------------------------------------------------------------------------------
    def _pod_filter(self):
        labels = sel.parse_labels(self.q("labelSelector"))
        fields = sel.parse_fields(self.q("fieldSelector"), sel.POD_FIELDS)
        return lambda pod: sel.labels_match(labels, pod["metadata"].get("labels")) and sel.fields_match(fields, pod)

    @route("GET", r"/api/v1/pods")
    def list_all_pods(self):
        self.list_pods(None)

    @route("GET", NS + r"/pods")
    def list_pods(self, ns):
        match = self._pod_filter()
        if self.flag("watch"):
            return self._watch("Pod", ns, self.state.list_pods, match)
        self._list("Pod", [p for p in self.state.list_pods(ns) if match(p)])

    @route("POST", NS + r"/pods")
    def create_pod(self, ns):
        pod = self.body()
        if not isinstance(pod, dict):
            raise ApiError(400, "BadRequest", "the body must be a Pod object")
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        if (pod["apiVersion"], pod["kind"]) != ("v1", "Pod"):
            raise ApiError(400, "BadRequest", f"expected v1 Pod, got {pod['apiVersion']} {pod['kind']}")
        meta = pod.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace sent on the request")
        validate_pod(pod)
        default_pod(pod)
        if self.q("dryRun"):
            meta.setdefault("name", meta.get("generateName", "") + "dryrun")
            meta["namespace"] = ns
            return self._json(201, pod)
        self._json(201, self.state.create_pod(ns, pod))

    @route("DELETE", NS + r"/pods")
    def delete_pods(self, ns):
        match = self._pod_filter()
        deleted = [self._delete(ns, p["metadata"]["name"]) for p in self.state.list_pods(ns) if match(p)]
        self._list("Pod", deleted)

    @route("GET", POD + r"(?:/status)?")
    def read_pod(self, ns, name):
        self._json(200, self.state.get_pod(ns, name))

    @route("PATCH", POD + r"(?:/status)?")
    def patch_pod(self, ns, name):
        body, ctype = self.body(), self.headers.get("Content-Type", "")

        def apply(pod: dict) -> None:
            patched = patching.apply(ctype, pod, body)
            meta = patched.get("metadata") or {}
            if (meta.get("name"), meta.get("namespace"), meta.get("uid")) != (name, ns, pod["metadata"]["uid"]):
                raise invalid("Pod", name, [("metadata", "Forbidden: name, namespace and uid cannot be changed")])
            for key in ("labels", "annotations"):
                if any(not isinstance(v, str) for v in (meta.get(key) or {}).values()):
                    raise invalid("Pod", name, [(f"metadata.{key}", "Invalid value: values must be strings")])
            pod.clear()
            pod.update(patched)
        self._json(200, self.state.update_pod(ns, name, apply))

    @route("PUT", POD + r"(?:/status)?")
    def replace_pod(self, ns, name):
        body = self.body()
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a Pod object")
        current = self.state.get_pod(ns, name)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods "{name}": the object has been '
                           "modified; please apply your changes to the latest version and try again",
                           {"name": name, "kind": "pods"})
        self._json(200, self.state.replace_pod(ns, name, body))

    @route("DELETE", POD)
    def delete_pod(self, ns, name):
        self._json(200, self._delete(ns, name))

    def _delete(self, ns: str, name: str) -> dict:
        """Remove at once (no grace period): kill the processes, free the node, drop the logs. A workload
        pod (one a controller owns) is deleted gracefully instead: it is marked, its containers get SIGTERM,
        and it leaves when they have ended (agent.terminate)."""
        current = self.state.get_pod(ns, name)
        if current["metadata"].get("ownerReferences"):
            body = self.body() if self.raw_body else None
            grace = (body or {}).get("gracePeriodSeconds") if isinstance(body, dict) else None
            if grace is None:
                grace = self.q("gracePeriodSeconds") or current["spec"].get("terminationGracePeriodSeconds", 30)
            self.server.controllers.delete_pod_with_grace(current, float(grace))
            return self.state.find_pod(ns, name) or current
        pod = self.state.delete_pod(ns, name)
        self.server.agent.forget(pod["metadata"]["uid"])
        self.state.drop_logs(ns, name)
        return pod

    # -- logs --------------------------------------------------------------------------------------------
    def _log_container(self, pod: dict) -> str:
        name = pod["metadata"]["name"]
        names = [c["name"] for c in pod["spec"]["containers"]]
        inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
        container = self.q("container")
        if not container:
            if len(names) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                               f"choose one of: [{' '.join(names)}]")
            container = names[0]
        if container not in names + inits:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        return container

    @route("GET", POD + r"/log")
    def read_log(self, ns, name):
        pod = self.state.get_pod(ns, name)
        container = self._log_container(pod)
        previous = self.state.read_previous_log(ns, name, container) if self.flag("previous") else None
        if self.flag("previous") and previous is None:
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
        if previous is None and st.state_of(pod, container) in (None, "waiting"):
            cs = next((c for c in pod["status"].get("containerStatuses") or [] if c["name"] == container), {})
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "ContainerCreating")
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        try:
            since = None
            if self.q("sinceSeconds"):
                since = time.time() - int(self.q("sinceSeconds"))
            elif self.q("sinceTime"):
                since = datetime.fromisoformat(self.q("sinceTime").replace("Z", "+00:00")).timestamp()
            tail = int(self.q("tailLines")) if self.q("tailLines") is not None else None
            limit = int(self.q("limitBytes")) if self.q("limitBytes") else None
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid log options: {exc}") from None
        lines = previous if previous is not None else self.state.read_log(ns, name, container)
        seen = len(lines)
        if since is not None:
            lines = [line for line in lines if line[0] >= since]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        text = self._format(lines)
        if not self.flag("follow") or previous is not None:
            return self._send(200, text[:limit] if limit else text, "text/plain")
        self._follow(pod, container, seen, text)

    def _format(self, lines: list[tuple[float, str]]) -> bytes:
        stamp = self.flag("timestamps")
        return "".join(f"{rfc3339_nano(ts)} {line}\n" if stamp else f"{line}\n" for ts, line in lines).encode()

    def _follow(self, pod: dict, container: str, seen: int, first: bytes) -> None:
        """Stream new lines until the container terminates, the pod goes away or the server stops."""
        ns, name, uid = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["metadata"]["uid"]
        self._start_stream("text/plain")
        self._chunk(first)
        while not self.server.stopping.is_set():
            with self.state.changed:
                new = self.state.read_log(ns, name, container, seen)
                current = self.state.find_pod(ns, name)
                done = (current is None or current["metadata"]["uid"] != uid
                        or st.state_of(current, container) == "terminated")
                if not new and not done:
                    self.state.changed.wait(0.25)
                    continue
            seen += len(new)
            self._chunk(self._format(new))
            if done:
                break
        self._end_stream()

    # -- exec --------------------------------------------------------------------------------------------
    @route("GET|POST", POD + r"/exec")
    def exec_pod(self, ns, name):
        if (self.headers.get("Upgrade") or "").lower() != "websocket":
            raise ApiError(400, "BadRequest", "Upgrade request required (the emulator speaks WebSocket only, not SPDY)")
        pod = self.state.get_pod(ns, name)
        container = self._log_container(pod)
        argv = self.query.get("command") or []
        if not argv:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        runtime = self.server.agent.runtime(pod["metadata"]["uid"])
        if runtime is None or st.state_of(pod, container) != "running":
            raise ApiError(400, "BadRequest", f'unable to upgrade connection: container not found ("{container}")')
        spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        env = {**self.server.agent.host_env(), **container_env(pod, spec, lambda s: self.state.find_secret(ns, s))}
        protocol = ws.choose_protocol(self.headers.get("Sec-WebSocket-Protocol"))
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws.accept_key(self.headers.get("Sec-WebSocket-Key", "")))
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.close_connection = True
        on_kill = (lambda: self.server.agent.stop_container(pod, container)) if container == st.SIDECAR else None
        session = ExecSession(ws.Connection(self.rfile, self.wfile), argv, env=env, sandbox=runtime.sandbox,
                              stdin=self.flag("stdin"), on_kill=on_kill)
        with self.server.sessions_lock:
            self.server.sessions.add(session)
        try:
            session.run()
        finally:
            with self.server.sessions_lock:
                self.server.sessions.discard(session)

    # -- events ------------------------------------------------------------------------------------------
    @route("GET", r"/api/v1/events")
    def list_all_events(self):
        self.list_events(None)

    @route("GET", NS + r"/events")
    def list_events(self, ns):
        fields = sel.parse_fields(self.q("fieldSelector"), sel.EVENT_FIELDS)
        labels = sel.parse_labels(self.q("labelSelector"))

        def match(event: dict) -> bool:
            return sel.fields_match(fields, event) and sel.labels_match(labels, event["metadata"].get("labels"))

        if self.flag("watch"):
            return self._watch("Event", ns, self.state.list_events, match)
        self._list("Event", [e for e in self.state.list_events(ns) if match(e)])

    @route("GET", r"/apis/events.k8s.io/v1/events")
    def list_all_events_v1(self):
        self.list_events_v1(None)

    @route("GET", r"/apis/events.k8s.io/v1/namespaces/(?P<ns>[^/]+)/events")
    def list_events_v1(self, ns):
        fields = sel.parse_fields(self.q("fieldSelector"), EVENTS_V1_FIELDS)

        def match(event: dict) -> bool:
            return sel.fields_match(fields, events_v1(event))

        if self.flag("watch"):
            return self._watch("Event", ns, self.state.list_events, match, events_v1)
        items = [events_v1(e) for e in self.state.list_events(ns) if match(e)]
        items.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        self._json(200, {"kind": "EventList", "apiVersion": "events.k8s.io/v1",
                         "metadata": {"resourceVersion": self.state.resource_version}, "items": items})

    # -- watches -----------------------------------------------------------------------------------------
    def _watch(self, kind: str, ns: str | None, lister, match, convert=lambda o: o) -> None:
        """Watch semantics: without a resourceVersion, the current objects arrive as ADDED first; with
        one, every change after it is replayed (410 Expired if it is older than the history kept)."""
        deadline = time.time() + float(self.q("timeoutSeconds") or 1800)
        rv = self.q("resourceVersion")
        self._start_stream("application/json")

        def send(change: str, obj: dict) -> None:
            self._chunk(json.dumps({"type": change, "object": obj}).encode() + b"\n")

        with self.state.lock:
            if rv in (None, "", "0"):
                initial, last, expired = [o for o in lister(ns) if match(o)], int(self.state.resource_version), False
            else:
                initial, last = [], int(rv)
                expired = last < self.state.oldest_remembered() - 1
        if expired:
            send("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": f"too old resource version: {rv}", "reason": "Expired", "code": 410})
            return self._end_stream()
        for obj in initial:
            send("ADDED", convert(obj))
        while not self.server.stopping.is_set() and time.time() < deadline:
            with self.state.changed:
                changes = self.state.changes_since(last)
                if not changes:
                    self.state.changed.wait(min(0.25, max(deadline - time.time(), 0)))
                    continue
            for version, k, change, obj in changes:
                last = version
                if k == kind and ns in (None, obj["metadata"].get("namespace")) and match(obj):
                    send(change, convert(obj))
        self._end_stream()

    # -- secrets -----------------------------------------------------------------------------------------
    @route("GET", r"/api/v1/secrets")
    def list_all_secrets(self):
        self.list_secrets(None)

    @route("GET", NS + r"/secrets")
    def list_secrets(self, ns):
        labels = sel.parse_labels(self.q("labelSelector"))
        fields = sel.parse_fields(self.q("fieldSelector"), sel.SECRET_FIELDS)
        self._list("Secret", [s for s in self.state.list_secrets(ns)
                              if sel.labels_match(labels, s["metadata"].get("labels")) and sel.fields_match(fields, s)])

    @route("POST", NS + r"/secrets")
    def create_secret(self, ns):
        secret = self.body()
        if not isinstance(secret, dict):
            raise ApiError(400, "BadRequest", "the body must be a Secret object")
        secret.setdefault("apiVersion", "v1")
        secret.setdefault("kind", "Secret")
        secret.setdefault("type", "Opaque")
        name = (secret.get("metadata") or {}).get("name")
        if not name:
            raise invalid("Secret", "", [("metadata.name", "Required value: name or generateName is required")])
        data = dict(secret.get("data") or {})
        for key, value in (secret.pop("stringData", None) or {}).items():  # the API server folds stringData in
            data[key] = base64.b64encode(str(value).encode()).decode()
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise invalid("Secret", name, [(f"data[{key}]", "Invalid value: not base64")]) from None
        secret["data"] = data
        self._json(201, self.state.create_secret(ns, secret))

    @route("GET", NS + r"/secrets/(?P<name>[^/]+)")
    def read_secret(self, ns, name):
        self._json(200, self.state.get_secret(ns, name))

    @route("DELETE", NS + r"/secrets/(?P<name>[^/]+)")
    def delete_secret(self, ns, name):
        self._json(200, self.state.delete_secret(ns, name))

    # -- Deployments, Services and the other kinds of KINDS -----------------------------------------------
    def _kind(self, plural: str, group: str = "", version: str = "v1", namespaced: bool | None = None):
        kind = KINDS.get(plural)
        if kind is None or (kind.group, kind.version) != (group, version) or (
                namespaced is not None and kind.namespaced != namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return kind

    def _generic(self, method: str, plural: str, ns: str | None, name: str | None, status: str | None,
                 group: str = "", version: str = "v1") -> None:
        """`ns` None: a cluster-wide list of a namespaced kind; "" : a cluster-scoped kind's objects."""
        kind = self._kind(plural, group, version, None if ns is None else ns != "")
        if name is None:
            if method == "GET":
                return self._list_kind(kind, ns)
            if method == "POST" and ns is not None:
                return self._create_kind(kind, ns)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            return self._json(200, self.state.get_object(kind.kind, ns, name))
        if method == "DELETE":
            return self._json(200, self.state.delete_object(kind.kind, ns, name))
        if method in ("PUT", "PATCH"):
            return self._update_kind(kind, ns, name, method, bool(status))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list_kind(self, kind, ns: str | None) -> None:
        labels = sel.parse_labels(self.q("labelSelector"))
        fields = sel.parse_fields(self.q("fieldSelector"), {"metadata.name", "metadata.namespace"})

        def match(obj: dict) -> bool:
            return sel.labels_match(labels, obj["metadata"].get("labels")) and sel.fields_match(fields, obj)

        if self.flag("watch"):
            return self._watch(kind.kind, ns, lambda n: self.state.list_objects(kind.kind, n), match)
        items = [o for o in self.state.list_objects(kind.kind, ns) if match(o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        self._json(200, {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                         "metadata": {"resourceVersion": self.state.resource_version}, "items": items})

    def _create_kind(self, kind, ns: str) -> None:
        obj = self.body()
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", f"the body must be a {kind.kind} object")
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        if (obj["apiVersion"], obj["kind"]) != (kind.api_version, kind.kind):
            raise ApiError(400, "BadRequest", f"expected {kind.api_version} {kind.kind}, got {obj['apiVersion']} "
                           f"{obj['kind']}")
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace sent on the request")
        obj.pop("status", None)
        validate_object(kind, obj)
        default_object(kind, obj, self.state)
        if self.q("dryRun"):
            meta["namespace"] = ns
            return self._json(201, obj)
        self._json(201, self.state.create_object(kind.kind, ns, obj))

    def _update_kind(self, kind, ns: str, name: str, method: str, status_only: bool) -> None:
        body, ctype = self.body(), self.headers.get("Content-Type", "")
        current = self.state.get_object(kind.kind, ns, name)
        if method == "PUT":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", f"the body must be a {kind.kind} object")
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind.plural} "{name}": the '
                               "object has been modified; please apply your changes to the latest version and try "
                               "again", {"name": name, "kind": kind.plural})
            updated = copy.deepcopy(body)
        else:
            updated = patching.apply(ctype, current, body)
        if status_only:  # the status subresource changes the status and nothing else
            updated = {**current, "status": updated.get("status") or {}}
        else:
            updated["status"] = current.get("status") or {}
            check = {k: v for k, v in updated.items() if k != "status"}
            check["metadata"] = {k: v for k, v in (updated.get("metadata") or {}).items()
                                 if k in ("name", "namespace", "labels", "annotations", "generateName")}
            validate_object(kind, check)

        def replace(obj: dict) -> None:
            meta = {**(updated.get("metadata") or {})}
            meta.pop("resourceVersion", None)
            kept = {**obj["metadata"], **{k: v for k, v in meta.items() if k in ("labels", "annotations")}}
            obj.clear()
            obj.update(copy.deepcopy(updated))
            obj["metadata"] = kept
            if not status_only:
                default_object(kind, obj, self.state)
        self._json(200, self.state.update_object(kind.kind, ns, name, replace))

    @route("GET|POST|PUT|PATCH|DELETE", NS + r"/(?P<plural>services)(?:/(?P<name>[^/]+)(?P<status>/status)?)?")
    def core_generic(self, ns, plural, name=None, status=None):
        self._generic(self.command, plural, ns, name, status)

    @route("GET", r"/api/v1/(?P<plural>services)")
    def core_generic_all(self, plural):
        self._generic("GET", plural, None, None, None)

    @route("GET|POST|PUT|PATCH|DELETE", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/"
           r"(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?P<status>/status)?)?")
    def group_generic(self, group, version, ns, plural, name=None, status=None):
        self._generic(self.command, plural, ns, name, status, group, version)

    @route("GET|POST", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/(?P<plural>[^/]+)")
    def group_generic_all(self, group, version, plural):
        """A cluster-wide list of a namespaced kind, or the objects of a cluster-scoped one."""
        kind = self._kind(plural, group, version)
        self._generic(self.command, plural, None if kind.namespaced else "", None, None, group, version)

    @route("GET|PUT|PATCH|DELETE", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/(?P<plural>[^/]+)/"
           r"(?P<name>[^/]+)(?P<status>/status)?")
    def cluster_generic(self, group, version, plural, name, status=None):
        self._generic(self.command, plural, "", name, status, group, version)

    # -- the API server's proxies ----------------------------------------------------------------------
    @route("GET|POST|PUT|PATCH|DELETE", NS + r"/services/(?P<target>[^/]+)/proxy(?P<path>/.*)?")
    def service_proxy(self, ns, target, path=None):
        parts = target.split(":")
        name, port = (parts[1], parts[2]) if len(parts) == 3 else (parts[0], parts[1] if len(parts) == 2 else None)
        service = self.state.get_object("Service", ns, name)
        weights = json.loads((service["metadata"].get("annotations") or {}).get(TRAFFIC_ANNOTATION) or "{}")
        if weights:  # an InferenceService's route (kserve.py): a variant by weight, then one of its pods
            service = self._weighted_pick(ns, weights)
            name = service["metadata"]["name"]
        ready = endpoints(self.state, self.server.agent, service, port)
        if not ready:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        with self.server.sessions_lock:
            turn = self.server.turns[(ns, name)] = self.server.turns.get((ns, name), -1) + 1
        self._forward(ready[turn % len(ready)][1], path)

    def _weighted_pick(self, ns: str, weights: dict[str, int]) -> dict:
        """The Service of one variant, drawn by the route's weights among variants with a ready pod."""
        import random

        live = {n: w for n, w in weights.items() if w > 0 and (svc := self.state.find_object("Service", ns, n))
                and endpoints(self.state, self.server.agent, svc, None)}
        if not live:
            raise ApiError(503, "ServiceUnavailable", "no ready variant behind the route")
        chosen = random.choices(list(live), weights=list(live.values()))[0]  # noqa: S311 - traffic split
        return self.state.get_object("Service", ns, chosen)

    @route("GET|POST|PUT|PATCH|DELETE", POD + r"/proxy(?P<path>/.*)?")
    def pod_proxy(self, ns, name, path=None):
        pod_name, _, port = name.partition(":")
        pod = self.state.get_pod(ns, pod_name)
        rt = self.server.agent.runtime(pod["metadata"]["uid"])
        declared = [p for c in pod["spec"]["containers"] for p in c.get("ports") or []]
        chosen = port or (str(declared[0]["containerPort"]) if declared else "")
        host = rt.host_port(chosen) if rt and chosen else None
        if host is None or pod["status"].get("phase") != "Running":
            raise ApiError(503, "ServiceUnavailable", f'pod "{pod_name}" has no running container on port '
                           f"{chosen or '(none declared)'}")
        self._forward(host, path)

    def _forward(self, port: int, path: str | None) -> None:
        """The request, as it came (method, path, query, body, content type), to 127.0.0.1:`port`; the answer
        back with its status, body and headers (a 502 when the pod does not answer)."""
        import http.client

        query = urlsplit(self.path).query
        target = (path or "/") + (f"?{query}" if query else "")
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "accept", "content-encoding")}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request(self.command, target, body=self.raw_body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except OSError as exc:
            raise ApiError(502, "BadGateway", f"error trying to reach service: {exc}") from None
        finally:
            conn.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
