"""The node agent: the scheduler and kubelet of the emulated cluster, in one polling thread.

It binds Pending pods to fake nodes (see scheduler.py), runs each bound pod's containers as local
processes (see runtime.py), writes their statuses and events as the real components would, and carries out
failure injection so tests can see what an OOM kill, an eviction, a failed image pull or an unschedulable
pod looks like through the API:

* `Cluster(inject={"name-prefix": "oom"})` or the pod label `emulator/inject: <failure>`; a list,
  `{"name-prefix": ["evict", None]}`, is used up by successive pods with that prefix (here: the first is
  evicted, the second and later ones run normally), which is how retries are tested;
* oom: the main container is SIGKILLed after `fail_after` s and reported OOMKilled, exit code 137;
* evict: every process is killed and the pod is Failed with reason Evicted;
* image-pull: the main container waits in ImagePullBackOff and the pod stays Pending;
* unschedulable: the pod is never bound (PodScheduled=False, reason Unschedulable).

The XCom sidecar (`airflow-xcom-sidecar`) is never run; it is reported running until an exec into it
kills it, which is what the provider does after reading the result. Init containers with a command run
in order before the main containers (one without a command is reported Completed unrun). emptyDir
volumes are folders of the pod's sandbox, and each declared containerPort a free loopback port (see
runtime.publish), so a pod's server is reachable through the API server's service and pod proxies.

Pods a controller owns (ownerReferences, e.g. a Deployment's) behave as workload pods: containers are
restarted under restartPolicy Always with a growing back-off (CrashLoopBackOff in between), HTTP
readiness and liveness probes run (see probes.py), and deleting one is graceful: SIGTERM, then SIGKILL
after terminationGracePeriodSeconds, the pod listed as terminating until its processes end. Other pods
keep the batch semantics the training tests rely on: nothing restarts and a delete is immediate.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import status as st
from .runtime import ConfigError, ContainerProcess, Sandbox, container_argv, container_env, free_port, publish
from .scheduler import choose_node, pod_requests
from .state import ApiError, State, rfc3339

INJECT_LABEL = "emulator/inject"
FAILURES = ("oom", "evict", "image-pull", "unschedulable")
_TERMINAL = ("Succeeded", "Failed")


@dataclass
class PodRuntime:
    """What the agent holds for one bound pod: its sandbox, processes and pending failure timer."""

    ns: str
    name: str
    uid: str
    sandbox: Sandbox
    failure: str | None
    main: str
    processes: dict[str, ContainerProcess] = field(default_factory=dict)
    timers: list[threading.Timer] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    last_retry: float = field(default_factory=time.time)
    inflicted: bool = False
    gone: bool = False
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> the host's loopback port
    port_names: dict[str, int] = field(default_factory=dict)  # named containerPort -> its number
    restarts: dict[str, int] = field(default_factory=dict)
    terminating: bool = False

    def host_port(self, port: int | str) -> int | None:
        number = self.port_names.get(port) if isinstance(port, str) and not port.isdigit() else int(port)
        return self.ports.get(number) if number is not None else None

    def kill(self) -> None:
        for timer in self.timers:
            timer.cancel()
        for proc in self.processes.values():
            proc.kill()


def workload(pod: dict) -> bool:
    """A pod a controller owns: restarted, probed and terminated gracefully (see the module's doc)."""
    return any(ref.get("controller") for ref in pod["metadata"].get("ownerReferences") or [])


def node_object(spec: dict, index: int) -> dict:
    """A Node from the Cluster's short form: name, labels, taints, allocatable (or `gpus`)."""
    allocatable = {"cpu": "64", "memory": "512Gi", "pods": "110",
                   **{k: str(v) for k, v in (spec.get("allocatable") or {}).items()}}
    if "gpus" in spec:
        allocatable[spec.get("gpu_resource", "nvidia.com/gpu")] = str(spec["gpus"])
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec["name"],
                     "labels": {"kubernetes.io/hostname": spec["name"], **(spec.get("labels") or {})}},
        "spec": {"taints": list(spec.get("taints") or []),
                 **({"unschedulable": True} if spec.get("unschedulable") else {})},
        "status": {"allocatable": allocatable, "capacity": dict(allocatable),
                   "addresses": [{"type": "InternalIP", "address": f"10.0.{index}.1"}],
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }


class NodeAgent(threading.Thread):
    """Scheduler plus kubelet for every node: one reconcile pass every `tick` seconds."""

    def __init__(self, state: State, workdir: Path, *, inject: dict[str, str] | None = None,
                 executables: dict[str, str] | None = None, inherit_env: bool = True,
                 tick: float = 0.05, fail_after: float = 0.5):
        super().__init__(daemon=True, name="k8s-emulator-agent")
        for planned in (inject or {}).values():
            for failure in planned if isinstance(planned, list) else [planned]:
                if failure is not None and failure not in FAILURES:
                    raise ValueError(f"unknown failure {failure!r}; one of {FAILURES}")
        self.state, self.workdir = state, workdir
        self.inject = {prefix: list(f) if isinstance(f, list) else f for prefix, f in (inject or {}).items()}
        self.executables = dict(executables or {})
        self._failures: dict[str, str | None] = {}  # pod uid -> its failure, fixed when first seen
        self.inherit_env, self.tick, self.fail_after = inherit_env, tick, fail_after
        self.runtimes: dict[str, PodRuntime] = {}
        self.started: list[ContainerProcess] = []  # every container process ever started, for leak checks
        self._lock = threading.RLock()
        self._halt = threading.Event()
        self._ips = itertools.count(2)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - a bug in one pass must not stop the node
                traceback.print_exc()
            self._halt.wait(self.tick)

    def stop(self) -> None:
        """Stop reconciling first (so no process starts after this), then kill what runs."""
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
        with self._lock:
            for rt in self.runtimes.values():
                rt.gone = True
                rt.kill()
                rt.sandbox.remove()
            self.runtimes.clear()

    def forget(self, uid: str) -> None:
        """The pod was deleted: kill its processes and drop its sandbox (its GPUs free themselves)."""
        with self._lock:
            rt = self.runtimes.pop(uid, None)
        if rt:
            rt.gone = True
            rt.kill()
            rt.sandbox.remove()

    def runtime(self, uid: str) -> PodRuntime | None:
        with self._lock:
            return self.runtimes.get(uid)

    def host_env(self) -> dict[str, str]:
        """What every container inherits: the host's environment (the "image" is the host's Python), or
        only PATH with `inherit_env=False`."""
        return dict(os.environ) if self.inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def failure_for(self, pod: dict) -> str | None:
        label = (pod["metadata"].get("labels") or {}).get(INJECT_LABEL)
        if label:
            return label if label in FAILURES else None
        uid, name = pod["metadata"]["uid"], pod["metadata"]["name"]
        with self._lock:
            if uid not in self._failures:
                planned = next((f for prefix, f in self.inject.items() if name.startswith(prefix)), None)
                if isinstance(planned, list):  # one per pod, in order; then none
                    planned = planned.pop(0) if planned else None
                self._failures[uid] = planned
            return self._failures[uid]

    # -- one pass ----------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        pods = self.state.list_pods()  # in creation order, so earlier pods get the resources first
        nodes = self.state.list_nodes()
        used: dict[str, Counter] = {}
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if node and pod["status"].get("phase") not in _TERMINAL:
                used.setdefault(node, Counter()).update(pod_requests(pod))
        for pod in pods:
            try:
                if not pod["spec"].get("nodeName"):
                    self._schedule(pod, nodes, used)
                else:
                    self._retry_config_errors(pod)
                    self._enforce_deadline(pod)
            except ApiError:  # deleted meanwhile
                continue

    def _update(self, pod: dict, mutate) -> dict:
        meta = pod["metadata"]
        return self.state.update_pod(meta["namespace"], meta["name"], mutate, uid=meta["uid"])

    def _schedule(self, pod: dict, nodes: list[dict], used: dict[str, Counter]) -> None:
        if self.failure_for(pod) == "unschedulable":
            node, message = None, f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) were unschedulable."
        else:
            node, message = choose_node(pod, nodes, used)
        if node is None:
            current = next((c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"), {})
            if current.get("message") != message:
                self._update(pod, lambda p: st.set_condition(p, "PodScheduled", "False", "Unschedulable", message))
                self.state.record_event(pod, "FailedScheduling", message, type_="Warning",
                                        component="default-scheduler")
            return
        used.setdefault(node, Counter()).update(pod_requests(pod))
        host = next(n for n in nodes if n["metadata"]["name"] == node)["status"]["addresses"][0]["address"]

        def bind(p: dict) -> None:
            p["spec"]["nodeName"] = node
            p["status"].update(hostIP=host, podIP=f"10.244.0.{next(self._ips) % 250 + 2}", startTime=rfc3339())
            st.set_condition(p, "PodScheduled", "True")
        bound = self._update(pod, bind)
        self.state.record_event(bound, "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/"
                                f"{pod['metadata']['name']} to {node}", component="default-scheduler")
        self._start(bound)

    # -- the kubelet part --------------------------------------------------------------------------------
    def _start(self, pod: dict) -> None:
        meta = pod["metadata"]
        rt = PodRuntime(meta["namespace"], meta["name"], meta["uid"],
                        Sandbox(self.workdir / meta["namespace"] / f"{meta['name']}-{meta['uid'][:8]}"),
                        self.failure_for(pod), main_container(pod))
        empty_dirs = {v["name"] for v in pod["spec"].get("volumes") or [] if "emptyDir" in v}
        for container in (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]:
            for mount in container.get("volumeMounts") or []:
                if mount["name"] in empty_dirs:
                    rt.sandbox.mount(mount["mountPath"], mount["name"])
            for port in container.get("ports") or []:
                rt.ports.setdefault(int(port["containerPort"]), free_port())
                if port.get("name"):
                    rt.port_names[port["name"]] = int(port["containerPort"])
        with self._lock:
            self.runtimes[rt.uid] = rt
        inits = [c for c in pod["spec"].get("initContainers") or [] if c.get("command")]

        def initialise(p: dict) -> None:
            st.set_condition(p, "PodReadyToStartContainers", "True")
            st.set_condition(p, "Initialized", "False" if inits else "True", "ContainersNotInitialized" if inits
                             else None)
            for init in p["spec"].get("initContainers") or []:
                ran = bool(init.get("command"))
                p["status"].setdefault("initContainerStatuses", []).append({
                    "name": init["name"], "image": init["image"], "imageID": "", "ready": False, "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}} if ran else {"terminated": {
                        "exitCode": 0, "reason": "Completed", "message": "not run by the emulator (no command)"}}})
            for c in p["spec"]["containers"]:
                st.container_status(p, c["name"])
                if inits:
                    st.set_waiting(p, c["name"], "PodInitializing")
        pod = self._update(pod, initialise)
        if inits:
            self._run_init(rt, 0)
        else:
            self._start_main(pod, rt)

    def _run_init(self, rt: PodRuntime, index: int) -> None:
        """Run init container `index`; the next one (or the main containers) starts when it exits 0."""
        try:
            pod = self.state.get_pod(rt.ns, rt.name)
        except ApiError:
            return
        inits = [c for c in pod["spec"].get("initContainers") or [] if c.get("command")]
        if rt.gone or rt.terminating:
            return
        if index >= len(inits):
            pod = self._update(pod, lambda p: st.set_condition(p, "Initialized", "True"))
            self._start_main(pod, rt)
            return
        container = inits[index]
        name = container["name"]
        env = container_env(pod, container, lambda s: self.state.find_secret(rt.ns, s))
        env = {key: publish(rt.sandbox.rewrite(value), rt.ports) for key, value in env.items()}
        argv = container_argv(container, env, rt.sandbox, self.executables, rt.ports)

        def exited(code: int) -> None:
            if rt.terminating:
                self._finish_termination(rt, False)
            if rt.gone or rt.terminating:
                return
            self._init_exited(rt, index, name, code)

        proc = ContainerProcess(argv, {**self.host_env(), "HOSTNAME": rt.name, **env}, rt.sandbox.root,
                                on_line=lambda line: self.state.append_log(rt.ns, rt.name, name, line),
                                on_exit=exited)
        self._event(pod, "Started", f"Started container {name}", f"spec.initContainers{{{name}}}")
        self._update(pod, lambda p: _init_status(p, name).update(state={"running": {"startedAt": rfc3339()}}))
        rt.processes[name] = proc
        self.started.append(proc)
        proc.start()
        if rt.gone:  # deleted, or the agent stopped, while it started
            proc.kill()

    def _init_exited(self, rt: PodRuntime, index: int, name: str, code: int) -> None:
        reason = "Completed" if code == 0 else "Error"
        try:
            pod = self.state.get_pod(rt.ns, rt.name)
        except ApiError:
            return

        def done(p: dict) -> None:
            cs = _init_status(p, name)
            cs.update(ready=code == 0, state={"terminated": {"exitCode": code, "reason": reason,
                                                             "finishedAt": rfc3339()}})
        pod = self._update(pod, done)
        if code == 0:
            self._run_init(rt, index + 1)
        elif workload(pod):
            self._back_off(rt, name, lambda: self._run_init(rt, index), init=True)
        else:
            def fail(p: dict) -> None:
                p["status"]["phase"] = "Failed"
                st.set_condition(p, "Initialized", "False", "ContainersNotInitialized",
                                 f"containers with incomplete status: [{name}]")
            self._update(pod, fail)

    def _start_main(self, pod: dict, rt: PodRuntime) -> None:
        main = rt.main
        for container in pod["spec"]["containers"]:
            name, image = container["name"], container["image"]
            field_path = f"spec.containers{{{name}}}"
            if name == st.SIDECAR:
                self._event(pod, "Started", f"Started container {name}", field_path)
                self._update(pod, lambda p, n=name: st.set_running(p, n))
            elif rt.failure == "image-pull" and name == main:
                self._event(pod, "Pulling", f'Pulling image "{image}"', field_path)
                self._event(pod, "Failed", f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
                            "failed to pull and unpack image (injected by the emulator)", field_path, "Warning")
                self._event(pod, "BackOff", f'Back-off pulling image "{image}"', field_path)
                backoff = f'Back-off pulling image "{image}"'
                self._update(pod, lambda p, n=name, m=backoff: st.set_waiting(p, n, "ImagePullBackOff", m))
            else:
                self._run(pod, rt, container, field_path)
        self._update(pod, st.refresh_phase)
        if rt.failure in ("oom", "evict"):
            timer = threading.Timer(self.fail_after, self._inflict, args=(rt,))
            timer.daemon = True
            rt.timers.append(timer)
            timer.start()

    def _back_off(self, rt: PodRuntime, name: str, again, *, init: bool = False) -> None:
        """A workload container exited: wait (0.5 s, doubling up to 5 s) and start it again."""
        count = rt.restarts[name] = rt.restarts.get(name, 0) + 1
        delay = min(0.5 * 2 ** (count - 1), 5.0)
        message = f"back-off {delay:g}s restarting failed container={name} pod={rt.name}"
        try:
            pod = self.state.get_pod(rt.ns, rt.name)
        except ApiError:
            return

        def waiting(p: dict) -> None:
            cs = _init_status(p, name) if init else st.container_status(p, name)
            cs.update(lastState={"terminated": (cs.get("state") or {}).get("terminated") or {}},
                      restartCount=count, ready=False, started=False,
                      state={"waiting": {"reason": "CrashLoopBackOff", "message": message}})
            st.refresh_phase(p)
        self._update(pod, waiting)
        self.state.rotate_log(rt.ns, rt.name, name)
        self._event(pod, "BackOff", "Back-off restarting failed container " + name,
                    f"spec.{'initContainers' if init else 'containers'}{{{name}}}", "Warning")
        timer = threading.Timer(delay, again)
        timer.daemon = True
        rt.timers.append(timer)
        timer.start()

    def _restart(self, rt: PodRuntime, name: str) -> None:
        if rt.gone or rt.terminating:
            return
        try:
            pod = self.state.get_pod(rt.ns, rt.name)
        except ApiError:
            return
        container = next(c for c in pod["spec"]["containers"] if c["name"] == name)
        self._run(pod, rt, container, f"spec.containers{{{name}}}")
        self._update(pod, st.refresh_phase)

    # -- graceful deletion of workload pods --------------------------------------------------------------
    def terminate(self, pod: dict, grace: float) -> None:
        """SIGTERM the pod's containers; SIGKILL after `grace` s; the pod leaves the store when they are gone."""
        rt = self.runtime(pod["metadata"]["uid"])
        if rt is None:
            self._remove(pod)
            return
        with self._lock:
            if rt.terminating:
                return
            rt.terminating = True
        for timer in rt.timers:
            timer.cancel()
        for c in pod["spec"]["containers"]:
            self._event(pod, "Killing", f"Stopping container {c['name']}", f"spec.containers{{{c['name']}}}")
        for proc in rt.processes.values():
            proc.term()
        killer = threading.Timer(grace, self._finish_termination, args=(rt, True))
        killer.daemon = True
        killer.start()
        self._finish_termination(rt, False)

    def _finish_termination(self, rt: PodRuntime, force: bool) -> None:
        if force:
            rt.kill()
        if any(proc.alive for proc in rt.processes.values()):
            return
        with self._lock:
            if rt.gone:
                return
            rt.gone = True
            self.runtimes.pop(rt.uid, None)
        try:
            self._remove(self.state.get_pod(rt.ns, rt.name))
        except ApiError:
            pass
        rt.sandbox.remove()

    def _remove(self, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            if self.state.get_pod(meta["namespace"], meta["name"])["metadata"]["uid"] == meta["uid"]:
                self.state.delete_pod(meta["namespace"], meta["name"])
        except ApiError:
            pass
        self.state.drop_logs(meta["namespace"], meta["name"])

    def _event(self, pod: dict, reason: str, message: str, field_path: str | None = None,
               type_: str = "Normal") -> None:
        self.state.record_event(pod, reason, message, type_=type_, field_path=field_path)

    def _run(self, pod: dict, rt: PodRuntime, container: dict, field_path: str) -> None:
        name = container["name"]
        ns = rt.ns
        try:
            env = container_env(pod, container, lambda s: self.state.find_secret(ns, s))
        except ConfigError as exc:
            message = str(exc)
            self._event(pod, "Failed", f"Error: {message}", field_path, "Warning")
            self._update(pod, lambda p: st.set_waiting(p, name, "CreateContainerConfigError", message))
            return
        env = {key: publish(rt.sandbox.rewrite(value), rt.ports) for key, value in env.items()}  # MLOPS_RESULT_PATH
        argv = container_argv(container, env, rt.sandbox, self.executables, rt.ports)
        self._event(pod, "Pulled", f'Container image "{container["image"]}" already present on machine', field_path)
        if not argv:
            self._fail_start(pod, name,
                             "the emulator needs an explicit command (it cannot read the image's entrypoint)")
            return
        proc = ContainerProcess(
            argv, {**self.host_env(), "HOSTNAME": rt.name, **env}, rt.sandbox.root,
            on_line=lambda line: self.state.append_log(ns, rt.name, name, line),
            on_exit=lambda code: self._exited(rt, name, code))
        self._event(pod, "Created", f"Created container {name}", field_path)
        probed = "readinessProbe" in container

        def running(p: dict) -> None:
            st.set_running(p, name)
            if probed:  # ready once its readiness probe passes (probes.py)
                st.container_status(p, name)["ready"] = False
        try:
            self._update(pod, running)
            proc.start()
        except OSError as exc:
            self._fail_start(pod, name, f"exec: {argv[0]!r}: {exc.strerror or exc}")
            return
        rt.processes[name] = proc
        self.started.append(proc)
        if rt.gone:  # deleted while starting
            proc.kill()
            return
        self._event(pod, "Started", f"Started container {name}", field_path)

    def _fail_start(self, pod: dict, name: str, message: str) -> None:
        self._event(pod, "Failed", f"Error: failed to start container {name!r}: {message}",
                    f"spec.containers{{{name}}}", "Warning")
        self._update(pod, lambda p: st.set_terminated(p, name, 128, "StartError", message))

    def _exited(self, rt: PodRuntime, name: str, code: int) -> None:
        if rt.gone:
            return
        if rt.terminating:
            self._finish_termination(rt, False)
            return
        if rt.failure in ("oom", "evict") and name == rt.main:
            self._inflict(rt)  # exiting early does not dodge an injected failure
            return

        def terminate(p: dict) -> None:
            if p["status"].get("reason") not in ("Evicted", "DeadlineExceeded"):
                st.set_terminated(p, name, code)
                st.refresh_phase(p)
        try:
            pod = self.state.update_pod(rt.ns, rt.name, terminate, uid=rt.uid)
        except ApiError:
            return
        if workload(pod) and pod["spec"].get("restartPolicy", "Always") in ("Always", "OnFailure") and (
                code != 0 or pod["spec"].get("restartPolicy", "Always") == "Always"):
            self._back_off(rt, name, lambda: self._restart(rt, name))

    def stop_container(self, pod: dict, name: str, exit_code: int = 0) -> None:
        """Stop a pseudo container (the XCom sidecar) as if its main process exited with `exit_code`."""
        def stop(p: dict) -> None:
            st.set_terminated(p, name, exit_code)
            st.refresh_phase(p)
        self._update(pod, stop)
        self._event(pod, "Killing", f"Stopping container {name}", f"spec.containers{{{name}}}")

    # -- failures ----------------------------------------------------------------------------------------
    def _inflict(self, rt: PodRuntime) -> None:
        """Carry out an injected oom or evict, once: on the timer or when the main container exits."""
        with self._lock:
            if rt.gone or rt.inflicted:
                return
            rt.inflicted = True
        try:
            self._inflict_on(rt, self.state.get_pod(rt.ns, rt.name))
        except ApiError:  # deleted meanwhile
            pass

    def _inflict_on(self, rt: PodRuntime, pod: dict) -> None:
        if rt.failure == "oom":
            def oom(p: dict) -> None:
                st.set_terminated(p, rt.main, 137, "OOMKilled")
                st.refresh_phase(p)
            self._update(pod, oom)
            if proc := rt.processes.get(rt.main):
                proc.kill()
            self._event(pod, "OOMKilling", f"Memory cgroup out of memory: Killed process in container {rt.main} "
                        "(injected by the emulator)", None, "Warning")
        else:
            message = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
                       f"Container {rt.main} was using 3Gi, request is 1Gi, has larger consumption of memory.")
            self._end_pod(rt, pod, "Evicted", message, "TerminationByKubelet")
            self._event(pod, "Evicted", message, None, "Warning")

    def _end_pod(self, rt: PodRuntime, pod: dict, reason: str, message: str, disruption: str | None) -> None:
        """Kill every container and fail the pod with a pod-level reason (eviction, deadline)."""
        def end(p: dict) -> None:
            for c in p["spec"]["containers"]:
                if st.state_of(p, c["name"]) != "terminated":
                    st.set_terminated(p, c["name"], 137)
            p["status"].update(phase="Failed", reason=reason, message=message)
            if disruption:
                st.set_condition(p, "DisruptionTarget", "True", disruption, message)
            st.set_condition(p, "Ready", "False", "PodFailed")
            st.set_condition(p, "ContainersReady", "False", "PodFailed")
        self._update(pod, end)
        rt.kill()
        for c in pod["spec"]["containers"]:
            self._event(pod, "Killing", f"Stopping container {c['name']}", f"spec.containers{{{c['name']}}}")

    def _retry_config_errors(self, pod: dict) -> None:
        """Start containers held by CreateContainerConfigError once their Secret exists (checked each second)."""
        rt = self.runtime(pod["metadata"]["uid"])
        if rt is None or time.time() - rt.last_retry < 1:
            return
        rt.last_retry = time.time()
        for cs in pod["status"].get("containerStatuses") or []:
            if (cs["state"].get("waiting") or {}).get("reason") == "CreateContainerConfigError":
                spec = next(c for c in pod["spec"]["containers"] if c["name"] == cs["name"])
                self._run(pod, rt, spec, f"spec.containers{{{cs['name']}}}")
                self._update(pod, st.refresh_phase)

    def _enforce_deadline(self, pod: dict) -> None:
        deadline = pod["spec"].get("activeDeadlineSeconds")
        rt = self.runtime(pod["metadata"]["uid"])
        if deadline is None or rt is None or pod["status"].get("phase") in _TERMINAL:
            return
        if time.time() - rt.started > deadline:
            message = "Pod was active on the node longer than the specified deadline"
            self._end_pod(rt, pod, "DeadlineExceeded", message, None)
            self._event(pod, "DeadlineExceeded", message, None, "Warning")


def _init_status(pod: dict, name: str) -> dict:
    return next(cs for cs in pod["status"].get("initContainerStatuses") or [] if cs["name"] == name)


def main_container(pod: dict) -> str:
    """The container the provider reads logs from: `base`, else the first one that is not the sidecar."""
    names = [c["name"] for c in pod["spec"]["containers"]]
    return "base" if "base" in names else next((n for n in names if n != st.SIDECAR), names[0])
