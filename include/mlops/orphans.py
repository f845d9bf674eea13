"""Which of this platform's training pods no longer belong to a running task.

A pod is an orphan when the task instance it was started for (its annotations name the DAG, run, task and
try) is not running any more, or is running a later try. Pure logic over plain data: the maintenance DAG
feeds it pods from the Kubernetes API and task states from Airflow's REST API (tasks may not touch the
metadata DB in Airflow 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

ANNOTATION_DAG = "mlops.airflow/dag-id"
ANNOTATION_RUN = "mlops.airflow/run-id"
ANNOTATION_TASK = "mlops.airflow/task-id"
ANNOTATION_TRY = "mlops.airflow/try-number"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=mlops-airflow"
LIVE_STATES = {"running", "deferred", "queued", "scheduled", "up_for_retry", "restarting"}


@dataclass(frozen=True)
class TaskKey:
    dag_id: str
    run_id: str
    task_id: str


@dataclass(frozen=True)
class Orphan:
    namespace: str
    name: str
    reason: str


def task_of(pod: dict[str, Any]) -> tuple[TaskKey, int] | None:
    notes = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return TaskKey(notes[ANNOTATION_DAG], notes[ANNOTATION_RUN], notes[ANNOTATION_TASK]), int(notes[ANNOTATION_TRY])
    except (KeyError, ValueError):
        return None


def find_orphans(pods: list[dict[str, Any]], task_state: Callable[[TaskKey], tuple[str | None, int] | None], *,
                 now: datetime | None = None, grace: timedelta = timedelta(minutes=10)) -> list[Orphan]:
    """`task_state(key)` returns (state, try_number) of the task instance, or None when it does not exist.
    Pods younger than `grace` are left alone: their task may not have reported yet."""
    now = now or datetime.now(timezone.utc)
    orphans: list[Orphan] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        created = meta.get("creationTimestamp")
        if created and now - datetime.fromisoformat(str(created).replace("Z", "+00:00")) < grace:
            continue
        if meta.get("ownerReferences"):  # a controller's pod (a Deployment's): it is not a training pod
            continue
        where = (meta.get("namespace", "default"), meta.get("name", "?"))
        owner = task_of(pod)
        if owner is None:
            orphans.append(Orphan(*where, "no task annotations (started outside the platform's operators?)"))
            continue
        key, pod_try = owner
        found = task_state(key)
        if found is None:
            orphans.append(Orphan(*where, f"task {key.dag_id}.{key.task_id} of run {key.run_id} no longer exists"))
            continue
        state, current_try = found
        if state not in LIVE_STATES:
            orphans.append(Orphan(*where, f"task {key.dag_id}.{key.task_id} of run {key.run_id} is {state}"))
        elif current_try != pod_try:
            orphans.append(Orphan(*where, f"pod of try {pod_try}, but the task runs try {current_try} now"))
    return orphans
