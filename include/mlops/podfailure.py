"""Why a training pod failed, in words a model author can act on, and whether retrying can help.

Works on the pod as the Kubernetes API returns it (a plain dict, camelCase keys), so it is tested without
a cluster and used by both cluster backends. A trainer that exited non-zero is judged by its exit code,
as the local backend judges it (mlops.failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.failures import from_exit_code

# Waiting reasons of a container whose image cannot be pulled: retrying will not fix the reference.
_IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class PodFailure:
    reason: str  # unschedulable | oom_killed | evicted | preempted | image_pull | exit_code | unknown
    message: str
    retryable: bool


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return (pod.get("status") or {}).get("containerStatuses") or []


def _trainer_exit(name: str, container: str, terminated: dict[str, Any], log_tail: list[str]) -> PodFailure:
    """The trainer's exit code says whether a retry can help (mlops.failures, as on the local backend);
    its MLOPS_FAILURE line, or else the container's termination message, says why."""
    code = terminated["exitCode"]
    message = terminated.get("message", "")
    failure = from_exit_code(code, log_tail or message.splitlines())
    if failure is None:
        raise ValueError(f"container '{container}' of pod {name} exited with code {code}, which is no failure")
    tail = "\n".join(log_tail[-20:]) or message
    return PodFailure("exit_code", f"container '{container}' of pod {name} exited with code {code} ({failure.kind}): "
                      f"{failure.reason}. {failure.verdict}. Last lines:\n{tail}",
                      failure.retryable)


def classify(pod: dict[str, Any], *, pool: str, container: str = "base",
             log_tail: list[str] | None = None) -> PodFailure:
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    spec_containers = (pod.get("spec") or {}).get("containers") or []
    limits: dict[str, Any] = next(
        (c.get("resources", {}).get("limits", {}) for c in spec_containers if c.get("name") == container), {})

    if status.get("reason") in ("Evicted", "Preempting", "Terminated", "DeadlineExceeded") or (
            status.get("phase") == "Failed" and status.get("reason")):
        reason = status["reason"]
        if reason == "DeadlineExceeded":
            return PodFailure("deadline", f"pod {name} ran past its active deadline (compute.timeout_minutes); "
                              "raise the timeout in the spec or make training faster", False)
        kind = "evicted" if reason == "Evicted" else "preempted"
        return PodFailure(kind, f"pod {name} was {kind} from its node in pool '{pool}' "
                          f"({status.get('message', reason)}); retrying on a new node", True)

    for cs in _containers(pod):
        if cs.get("name") != container:
            continue
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _IMAGE_ERRORS:
            return PodFailure("image_pull", f"container '{container}' of pod {name} cannot pull its image "
                              f"({waiting['reason']}: {waiting.get('message', '')}); check trainer.image or "
                              "MLOPS_TRAINER_IMAGE and the pull secret. Not retried", False)
        terminated = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
        if terminated.get("reason") == "OOMKilled":
            return PodFailure("oom_killed", f"container '{container}' of pod {name} was OOMKilled at its memory limit "
                              f"{limits.get('memory', '?')}; raise compute.memory in the spec (pool '{pool}')", False)
        if terminated.get("exitCode") not in (None, 0):
            return _trainer_exit(name, container, terminated, log_tail or [])

    if status.get("phase") == "Pending":
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return PodFailure("unschedulable", f"pod {name} could not be scheduled in pool '{pool}': "
                                  f"{cond.get('message') or cond.get('reason')}. Check the pool's quota and "
                                  "autoscaling, or pick another pool", True)
        return PodFailure("unschedulable", f"pod {name} never started in pool '{pool}' (still Pending)", True)

    return PodFailure("unknown", f"pod {name} failed (phase {status.get('phase')}, "
                      f"{status.get('message', 'no message')})", True)
