"""Builders for the pod status fields the kubelet and scheduler write (conditions, container states, the
phase), kept apart from the agent's control flow so each rule reads on its own.

Every container status carries the fields the client models require (name, image, imageID, ready,
restartCount), or the Python client refuses to deserialize the pod.
"""

from __future__ import annotations

from .state import rfc3339

SIDECAR = "airflow-xcom-sidecar"


def set_condition(pod: dict, type_: str, status: str, reason: str | None = None, message: str | None = None) -> None:
    conditions = pod["status"].setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == type_), None)
    if (current and current["status"] == status and current.get("reason") == reason
            and current.get("message") == message):
        return
    new = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": rfc3339()}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    if current:
        conditions[conditions.index(current)] = new
    else:
        conditions.append(new)


def container_status(pod: dict, name: str) -> dict:
    """The status entry for container `name`, created (waiting, ContainerCreating) on first use."""
    statuses = pod["status"].setdefault("containerStatuses", [])
    for cs in statuses:
        if cs["name"] == name:
            return cs
    image = next(c["image"] for c in pod["spec"]["containers"] if c["name"] == name)
    cs = {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": 0, "started": False,
          "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}
    statuses.append(cs)
    return cs


def set_waiting(pod: dict, name: str, reason: str, message: str | None = None) -> None:
    cs = container_status(pod, name)
    waiting = {"reason": reason, **({"message": message} if message else {})}
    cs.update(ready=False, started=False, state={"waiting": waiting})


def set_running(pod: dict, name: str, started_at: str | None = None) -> None:
    cs = container_status(pod, name)
    cs.update(ready=True, started=True, containerID=f"emulator://{pod['metadata']['uid']}/{name}",
              imageID=f"emulator://{cs['image']}", state={"running": {"startedAt": started_at or rfc3339()}})


def set_terminated(pod: dict, name: str, exit_code: int, reason: str | None = None, message: str | None = None) -> None:
    cs = container_status(pod, name)
    if "terminated" in cs["state"]:
        return
    started = (cs["state"].get("running") or {}).get("startedAt")
    terminated = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                  "startedAt": started, "finishedAt": rfc3339(),
                  "containerID": cs.get("containerID", f"emulator://{pod['metadata']['uid']}/{name}")}
    if message:
        terminated["message"] = message
    cs.update(ready=False, started=False, state={"terminated": terminated})


def state_of(pod: dict, name: str) -> str | None:
    """'waiting' | 'running' | 'terminated' | None (no status yet), of a container or an init container."""
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs["name"] == name:
            return next(iter(cs.get("state") or {}), None)
    return None


def refresh_phase(pod: dict) -> None:
    """Phase and readiness from the container states. A pod stays Running while any container runs, so a
    pod with the XCom sidecar only ends once the sidecar has been stopped, as on a real cluster; a
    container in CrashLoopBackOff keeps its pod Running (it has run and will run again). A running
    container is ready unless its readiness probe has not passed (probes.py clears `ready`)."""
    status = pod["status"]
    if status.get("reason") in ("Evicted", "DeadlineExceeded"):
        return
    states = [state_of(pod, c["name"]) for c in pod["spec"]["containers"]]
    restarting = any(((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                     for cs in status.get("containerStatuses") or [])
    if all(s == "terminated" for s in states):
        codes = [cs["state"]["terminated"]["exitCode"] for cs in status["containerStatuses"]]
        status["phase"] = "Succeeded" if all(code == 0 for code in codes) else "Failed"
    elif restarting or (any(s in ("running", "terminated") for s in states) and "waiting" not in states):
        status["phase"] = "Running"
    else:
        status["phase"] = "Pending"
    statuses = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
    ready = "True" if all(s == "running" and statuses[c["name"]].get("ready")
                          for s, c in zip(states, pod["spec"]["containers"], strict=True)) else "False"
    if ready == "True":
        reason = None
    else:
        reason = "PodCompleted" if status["phase"] in ("Succeeded", "Failed") else "ContainersNotReady"
    set_condition(pod, "ContainersReady", ready, reason)
    set_condition(pod, "Ready", ready, reason)
