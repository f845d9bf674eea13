"""The train task of each compute backend, and a sweep's mapped trial task on the same backend: the same
operator family, the same pool quota."""

from __future__ import annotations

from datetime import timedelta

from mlops.compute import Catalogue
from mlops.spec import ModelSpec
from mlops_airflow.operators import LocalTrainOperator


def train_task(spec: ModelSpec, catalogue: Catalogue | None, backend: str, chosen_task_id: str | None = None):
    """The `train` task of the model's backend; `chosen_task_id` names a sweep's select_best, whose parameters it
    trains with instead of the trigger form's."""
    timeout = timedelta(minutes=spec.compute.timeout_minutes + 5)
    if backend == "local":
        return LocalTrainOperator(task_id="train", spec=spec, execution_timeout=timeout, chosen_task_id=chosen_task_id,
                                  **local_gpu_quota(spec, catalogue))
    if catalogue is None:
        raise ValueError(f"{spec.name}: compute.backend {backend} plans its pod from the pool catalogue; pass "
                         "catalogue=load_catalogue(<compute dir>/pools.yaml) to the DAG builder")
    # The pod's own schedule and startup timeouts come first; this is the backstop.
    backstop = timeout + timedelta(hours=1)
    # Imported only when a model trains on a cluster: the kubernetes client is not free to import.
    if backend == "kubernetes":
        from mlops_airflow.operators.train_kubernetes import KubernetesTrainOperator

        return KubernetesTrainOperator(task_id="train", spec=spec, catalogue=catalogue, execution_timeout=backstop,
                                       chosen_task_id=chosen_task_id)
    from mlops_airflow.operators.train_gke import GKETrainOperator

    return GKETrainOperator(task_id="train", spec=spec, catalogue=catalogue, execution_timeout=backstop,
                            chosen_task_id=chosen_task_id)


def local_gpu_quota(spec: ModelSpec, catalogue: Catalogue | None) -> dict:
    """A workstation's GPUs are a quota too: local training that asks for GPUs takes one slot per GPU of
    its pool's Airflow pool, as the pod would. CPU-only local training stays in default_pool, so a laptop
    whose pools were never synced still runs it."""
    if catalogue is None or spec.compute.gpus < 1 or spec.compute.pool not in catalogue.pools:
        return {}
    pool = catalogue.pools[spec.compute.pool]
    return {"pool": pool.airflow_pool, "pool_slots": min(spec.compute.gpus, pool.airflow_pool_slots)}


def trial_tasks(spec: ModelSpec, catalogue: Catalogue | None, backend: str, round_no: int, asked):
    """Round `round_no`'s trials: one mapped task per trial `asked` holds (a plan task's output), named in the UI
    by its parameters, holding the model's pool slots like its training does; never more of them at once than
    the spec lets a trigger ask for."""
    from mlops_airflow.operators.tuning import TRIAL_LABEL, trials_id

    tuning = spec.tuning
    if tuning is None:
        raise ValueError(f"{spec.name}: the spec has no tuning section")
    common = dict(task_id=trials_id(round_no), spec=spec, map_index_template="{{ %s }}" % TRIAL_LABEL,
                  max_active_tis_per_dagrun=tuning.max_parallelism)
    timeout = timedelta(minutes=spec.compute.timeout_minutes + 5)
    if backend == "local":
        from mlops_airflow.operators.tuning import LocalTrialOperator

        return LocalTrialOperator.partial(**common, execution_timeout=timeout,
                                          **local_gpu_quota(spec, catalogue)).expand(trial=asked)
    if catalogue is None:
        raise ValueError(f"{spec.name}: compute.backend {backend} plans its pods from the pool catalogue")
    from mlops_airflow.operators.tuning_pods import GKETrialOperator, KubernetesTrialOperator

    operator = KubernetesTrialOperator if backend == "kubernetes" else GKETrialOperator
    return operator.partial(**common, catalogue=catalogue,
                            execution_timeout=timeout + timedelta(hours=1)).expand(trial=asked)
