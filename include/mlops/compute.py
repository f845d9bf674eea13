"""The compute pool catalogue: where training pods may run, declared as data.

`include/compute/pools.yaml` names each pool's node selector, tolerations, GPU resource and GPUs per node,
default CPU and memory, the Airflow pool its tasks draw slots from (sized to the GPU quota: autoscaled node
pools have no fixed size), whether it is spot and its on-demand fallback. The DAG factory reads it at parse
time, so only pydantic and PyYAML are imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import Field, ValidationError, model_validator

from mlops.documents import Strict, read_yaml
from mlops.problems import ProblemsError
from mlops.settings import ComputeBackend, get_settings

BACKENDS = get_args(ComputeBackend)


class CatalogueError(ProblemsError):
    """Every problem of the pool catalogue file."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        super().__init__(f"{path}: {len(problems)} problem(s) in the pool catalogue", problems)


class Toleration(Strict):
    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Pool(Strict):
    description: str = ""
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    gpu_resource: str | None = Field(None, description="Extended resource name, e.g. nvidia.com/gpu.")
    gpus_per_node: int = Field(0, ge=0)
    cpu: str = "2"
    memory: str = "8Gi"
    airflow_pool: str = Field(description="Airflow pool whose slots cap the pods running here at once.")
    airflow_pool_slots: int = Field(ge=1, description="Total slots: the GPU quota for GPU pools.")
    spot: bool = False
    fallback: str | None = Field(None, description="On-demand pool for the last retry of a spot task.")
    gke_compute_class: str | None = Field(
        None, description="GKE custom ComputeClass that prefers this spot pool and falls back by itself."
    )
    node_type: str = Field("", description="Machine type of the pool's nodes (recorded with every run's cost).")
    price_per_gpu_hour: float = Field(0.0, ge=0, description="Price of one GPU for an hour (the catalogue's "
                                      "currency); 0 when unknown.")
    price_per_node_hour: float = Field(
        0.0, ge=0, description="Price of one node for an hour, GPUs excluded; a pod pays the share of the node its "
        "GPUs take (a whole node on a pool without GPUs).")

    @model_validator(mode="after")
    def _gpu_fields(self) -> "Pool":
        if self.gpus_per_node and not self.gpu_resource:
            raise ValueError("gpus_per_node > 0 needs gpu_resource (e.g. nvidia.com/gpu)")
        return self


class Catalogue(Strict):
    apiVersion: Literal["mlops.airflow/v1"]
    currency: str = Field("USD", min_length=1, max_length=8, description="Of every price below.")
    pools: dict[str, Pool]

    @model_validator(mode="after")
    def _fallbacks(self) -> "Catalogue":
        problems = []
        for name, pool in self.pools.items():
            if pool.fallback is None:
                if pool.spot and pool.gke_compute_class is None:
                    problems.append(f"pools.{name}: a spot pool needs a fallback or a gke_compute_class")
                continue
            target = self.pools.get(pool.fallback)
            if target is None:
                problems.append(f"pools.{name}.fallback: no pool '{pool.fallback}'; use one of {sorted(self.pools)}")
            elif target.spot:
                problems.append(f"pools.{name}.fallback: '{pool.fallback}' is spot too; fall back to on-demand")
            elif target.airflow_pool != pool.airflow_pool:
                # The Airflow pool is fixed when the DAG is parsed, the node pool only at the last retry.
                problems.append(
                    f"pools.{name}.fallback: '{pool.fallback}' draws from Airflow pool '{target.airflow_pool}', "
                    f"not '{pool.airflow_pool}'; a task's Airflow pool cannot change between retries, so give "
                    "both the same airflow_pool"
                )
            elif target.gpu_resource != pool.gpu_resource or target.gpus_per_node < pool.gpus_per_node:
                problems.append(f"pools.{name}.fallback: '{pool.fallback}' does not offer the same GPUs")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def airflow_pools(self) -> dict[str, int]:
        """Airflow pool name -> slots (the largest declared when pools share one)."""
        out: dict[str, int] = {}
        for pool in self.pools.values():
            out[pool.airflow_pool] = max(out.get(pool.airflow_pool, 0), pool.airflow_pool_slots)
        return out


def load_catalogue(path: str | Path) -> Catalogue:
    path = Path(path)
    try:
        data = read_yaml(path.read_text())
    except OSError as exc:
        raise CatalogueError(path, [f"cannot read it ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        raise CatalogueError(path, [f"not valid YAML: {exc}"]) from None
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(path, [f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
                                    for e in exc.errors()]) from None


def catalogue_path(compute_dir: Path) -> Path:
    return Path(compute_dir) / "pools.yaml"


def effective_backend(spec_backend: str) -> str:
    """MLOPS_COMPUTE_BACKEND, when set, overrides every spec's backend: the same DAGs run on a laptop
    and on a cluster without editing specs."""
    return get_settings().compute.backend or spec_backend  # a bad value fails in the settings, named


def pool_problems(catalogue: Catalogue, pool_name: str, gpus: int) -> list[str]:
    """What is wrong with asking this pool for this many GPUs (empty when it fits)."""
    pool = catalogue.pools.get(pool_name)
    if pool is None:
        return [f"compute.pool: no pool '{pool_name}' in the catalogue; use one of {sorted(catalogue.pools)}"]
    if gpus and not pool.gpu_resource:
        gpu_pools = sorted(n for n, p in catalogue.pools.items() if p.gpu_resource)
        return [f"compute.gpus: pool '{pool_name}' has no GPUs; use a GPU pool ({gpu_pools}) or gpus: 0"]
    if gpus > pool.gpus_per_node:
        return [f"compute.gpus: {gpus} GPUs do not fit on one node of pool '{pool_name}' "
                f"({pool.gpus_per_node} per node); ask for at most {pool.gpus_per_node} or pick a larger pool"]
    return []


def allowed_pools(catalogue: Catalogue, pool_name: str, gpus: int) -> list[str]:
    """Pools a run of this model may be sent to instead of its own: those that fit its GPUs and draw
    from the same Airflow pool (the train task's Airflow pool is fixed when the DAG is parsed, so a pool
    elsewhere would hold slots of the wrong quota)."""
    own = catalogue.pools.get(pool_name)
    if own is None:
        return []
    return sorted(name for name, pool in catalogue.pools.items()
                  if pool.airflow_pool == own.airflow_pool and not pool_problems(catalogue, name, gpus))
