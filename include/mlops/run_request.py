"""Rules across the fields of a training run's trigger form, checked before anything changes.

Each Param is typed and bounded on its own (Airflow checks those when the run is created); what only
holds between fields, or against the pool catalogue, is checked here, and every problem is reported at
once with its fix.
"""

from __future__ import annotations

from mlops.compute import Catalogue, allowed_pools, pool_problems
from mlops.spec import ModelSpec


class RunRequestError(ValueError):
    def __init__(self, model: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{model}: this run's request cannot be carried out; nothing was changed:\n{lines}")


def training_request(spec: ModelSpec, catalogue: Catalogue, params: dict) -> dict:
    """The run's effective request (force, reason, pool), or RunRequestError listing every problem."""
    problems = []
    force = bool(params.get("force_promote", False))
    reason = str(params.get("force_reason") or "").strip()
    if force and not spec.promotion.allow_force:
        problems.append("force_promote: forcing is switched off for this model (promotion.allow_force: false); "
                        "untick force_promote")
    if force and not reason:
        problems.append("force_promote is ticked but force_reason is empty: say why (it goes to the audit log), "
                        "or untick force_promote")
    if reason and not force:
        problems.append("force_reason is filled in but force_promote is not ticked: tick it to force the "
                        "promotion, or clear the reason")

    pool = str(params.get("compute_pool") or spec.compute.pool)
    if pool != spec.compute.pool:
        allowed = allowed_pools(catalogue, spec.compute.pool, spec.compute.gpus)
        if pool not in allowed:
            why = pool_problems(catalogue, pool, spec.compute.gpus)
            if not why:
                why = [f"pool '{pool}' draws from Airflow pool '{catalogue.pools[pool].airflow_pool}', but this "
                       f"model's train task holds slots of '{catalogue.pools[spec.compute.pool].airflow_pool}'"]
            problems.append(f"compute_pool: {why[0].split(': ', 1)[-1]}; this model may use {allowed}")
    if problems:
        raise RunRequestError(spec.name, problems)
    return {"force_promote": force, "force_reason": reason or None, "compute_pool": pool,
            "pool_overridden": pool != spec.compute.pool}
