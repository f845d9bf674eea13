"""What a training pod looks like, as plain data: the Airflow layer turns it into a pod request.

Resources come from the spec (or the pool's defaults), placement from the pool catalogue. The tracking
URI and credentials come from a Kubernetes Secret by reference, so they never appear in a pod spec that
gets printed. Kept free of the kubernetes client so it is cheap and testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.compute import Catalogue, Pool
from mlops.settings import ClusterSettings, Settings
from mlops.spec import ModelSpec

MANAGED_BY = "mlops-airflow"
LABEL_MODEL = "mlops.airflow/model"
LABEL_POOL = "mlops.airflow/pool"
RUN_AS = 50000  # the trainer image's non-root user
SECRET_ENV = (("MLFLOW_TRACKING_URI", False), ("MLFLOW_TRACKING_USERNAME", True),
              ("MLFLOW_TRACKING_PASSWORD", True), ("MLFLOW_TRACKING_TOKEN", True))


@dataclass(frozen=True)
class SecretEnv:
    name: str
    secret: str
    key: str
    optional: bool


@dataclass(frozen=True)
class PodPlan:
    image: str
    pool_name: str
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    requests: dict[str, str]
    limits: dict[str, str]
    labels: dict[str, str]
    annotations: dict[str, str]
    env: dict[str, str]
    secret_env: list[SecretEnv] = field(default_factory=list)
    airflow_pool: str = "default_pool"
    airflow_pool_slots: int = 1
    active_deadline_seconds: int = 3600


def placement(pool: Pool, backend: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    tolerations = [t.model_dump(exclude_none=True) for t in pool.tolerations]
    if backend == "gke" and pool.spot and pool.gke_compute_class:
        # GKE falls back by itself: the compute class prefers spot nodes and then on-demand ones.
        gpu_tolerations = [t for t in tolerations if t["key"] == pool.gpu_resource]
        return {"cloud.google.com/compute-class": pool.gke_compute_class}, gpu_tolerations
    return dict(pool.node_selector), tolerations


def plan_pod(spec: ModelSpec, catalogue: Catalogue, backend: str, settings: Settings,
             cluster: ClusterSettings, *, last_try: bool = False) -> PodPlan:
    """The pod for one training attempt. On the last try a spot pool (outside GKE's own fallback)
    gives way to its on-demand fallback, which draws from the same Airflow pool."""
    pool_name = spec.compute.pool
    pool = catalogue.pools[pool_name]
    airflow_pool, slots_total = pool.airflow_pool, pool.airflow_pool_slots
    if last_try and pool.spot and pool.fallback and not (backend == "gke" and pool.gke_compute_class):
        pool_name, pool = pool.fallback, catalogue.pools[pool.fallback]
    node_selector, tolerations = placement(pool, backend)

    cpu = spec.compute.cpu or pool.cpu
    memory = spec.compute.memory or pool.memory
    requests = {"cpu": cpu, "memory": memory}
    limits = {"memory": memory}  # no CPU limit: throttling a trainer only makes it slower
    if spec.compute.gpus:
        if pool.gpu_resource is None:  # the spec's checks (compute.pool_problems) rule this out
            raise ValueError(f"compute.gpus: pool '{pool_name}' has no GPUs (no gpu_resource); use a GPU pool")
        requests[pool.gpu_resource] = limits[pool.gpu_resource] = str(spec.compute.gpus)

    from mlops.train import trainer_environment

    env = {k: v for k, v in trainer_environment(settings).items()
           if k not in ("MLFLOW_TRACKING_URI", "MLOPS_HOME", "MLOPS_ARTIFACT_ROOT")}
    env["MLOPS_DATA_ROOT"] = cluster.pod_data_root or settings.data_root
    if cluster.pod_artifact_root:
        env["MLOPS_ARTIFACT_ROOT"] = cluster.pod_artifact_root
    env["MLOPS_TRAINER_IMAGE"] = spec.trainer.image or cluster.trainer_image
    return PodPlan(
        image=spec.trainer.image or cluster.trainer_image,
        pool_name=pool_name,
        node_selector=node_selector,
        tolerations=tolerations,
        requests=requests,
        limits=limits,
        labels={"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/component": "trainer",
                LABEL_MODEL: spec.name, LABEL_POOL: pool_name},
        annotations={"mlops.airflow/spec-hash": spec.content_hash(), "mlops.airflow/owner": spec.owner,
                     "mlops.airflow/airflow-pool": airflow_pool},
        env=env,
        secret_env=[SecretEnv(name, cluster.tracking_secret, name, optional) for name, optional in SECRET_ENV],
        airflow_pool=airflow_pool,
        airflow_pool_slots=min(max(1, spec.compute.gpus), slots_total),
        active_deadline_seconds=spec.compute.timeout_minutes * 60,
    )
