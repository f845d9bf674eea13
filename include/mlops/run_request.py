"""Rules for a training run's trigger request, checked by its first task before anything changes.

Each Param is typed and bounded on its own (Airflow checks those when the run is created); what only
holds between fields, against the pool catalogue, for the trigger's conf as it was sent (a key no field
has, a number JSON could not carry) or for the spec's trainer references is checked here, and every
problem is reported at once with its fix.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from mlops.authoring import reference_problems
from mlops.compute import Catalogue, allowed_pools, pool_problems
from mlops.problems import ProblemsError
from mlops.spec import ModelSpec

REQUEST_FIELDS = ("compute_pool", "force_promote", "force_reason")
HYPERPARAMETER_PREFIX = "hp_"


class RunRequestError(ProblemsError):
    """Every problem of one training run's request."""

    def __init__(self, model: str, problems: list[str]):
        self.model = model
        super().__init__(f"{model}: this run's request cannot be carried out; nothing was changed", problems)


def form_fields(spec: ModelSpec) -> list[str]:
    """The fields of the model's trigger form (its training DAG's params), in the form's order."""
    return [f"{HYPERPARAMETER_PREFIX}{name}" for name in spec.trainer.hyperparameters] + list(REQUEST_FIELDS)


def training_request(spec: ModelSpec, catalogue: Catalogue, params: dict[str, Any],
                     conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's effective request (force, reason, pool), or RunRequestError listing every problem.

    `params` are the run's values (the form's defaults with the conf over them); `conf` is what the trigger
    sent, where a key no field has would otherwise be ignored without a word."""
    force = bool(params.get("force_promote") or False)
    reason = str(params.get("force_reason") or "").strip()
    pool = str(params.get("compute_pool") or spec.compute.pool)
    problems = [
        *reference_problems(spec.trainer),
        *unknown_fields(conf or {}, form_fields(spec)),
        *hyperparameter_problems(spec, params),
        *_promotion_problems(spec, force, reason),
        *_pool_problems(spec, catalogue, pool),
    ]
    if problems:
        raise RunRequestError(spec.name, problems)
    return {"force_promote": force, "force_reason": reason or None, "compute_pool": pool,
            "pool_overridden": pool != spec.compute.pool}


def unknown_fields(conf: dict[str, Any], fields: list[str]) -> list[str]:
    """A problem for each conf key that is no field of the form, naming the field it most looks like."""
    problems = []
    for key in (k for k in conf if k not in fields):
        near = _nearest(str(key), fields)
        hint = f"did you mean '{near}'? " if near else ""
        problems.append(f"{key}: no such field in this model's trigger form; {hint}Fix the key or remove it "
                        f"(the fields: {', '.join(fields)})")
    return problems


def _nearest(key: str, fields: list[str]) -> str | None:
    if f"{HYPERPARAMETER_PREFIX}{key}" in fields:  # a hyperparameter given without its prefix
        return f"{HYPERPARAMETER_PREFIX}{key}"
    lowered = {f.lower(): f for f in fields}
    near = difflib.get_close_matches(key.lower(), list(lowered), n=1)
    return lowered[near[0]] if near else None


def hyperparameter_problems(spec: ModelSpec, params: dict[str, Any]) -> list[str]:
    """Numeric hyperparameters that arrived without a usable number. The fields accept null so that Airflow
    lets the run start and this check can say what happened: JSON has no NaN or Infinity, and the REST API
    turns them (and numbers too large for a float, like 1e400) into null."""
    problems = []
    for name, default in spec.trainer.hyperparameters.items():
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue  # text, flags and free JSON: a cleared field means the spec's value
        key = f"{HYPERPARAMETER_PREFIX}{name}"
        value = params.get(key, default)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(
                f"{key}: {_shown(value)} arrived where a number is needed. NaN, Infinity and numbers out of range "
                f"(like 1e400) arrive as null: give a finite number{_limits(spec, name)} (the spec's value is "
                f"{default!r}), or leave {key} out to train with the spec's value")
    return problems


def _shown(value: float | None) -> str:
    if value is None:
        return "null"
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _limits(spec: ModelSpec, name: str) -> str:
    bounds = spec.trainer.hyperparameter_ranges.get(name)
    if bounds is None:
        return ""
    low = "" if bounds.min is None else f" from {bounds.min:g}"
    high = "" if bounds.max is None else f" up to {bounds.max:g}"
    return low + high


def _promotion_problems(spec: ModelSpec, force: bool, reason: str) -> list[str]:
    problems = []
    if force and not spec.promotion.allow_force:
        problems.append("force_promote: forcing is switched off for this model (promotion.allow_force: false); "
                        "untick force_promote")
    if force and not reason:
        problems.append("force_promote is ticked but force_reason is empty: say why (it goes to the audit log), "
                        "or untick force_promote")
    if reason and not force:
        problems.append("force_reason is filled in but force_promote is not ticked: tick it to force the "
                        "promotion, or clear the reason")
    return problems


def _pool_problems(spec: ModelSpec, catalogue: Catalogue, pool: str) -> list[str]:
    if pool == spec.compute.pool:
        return []
    allowed = allowed_pools(catalogue, spec.compute.pool, spec.compute.gpus)
    if pool in allowed:
        return []
    why = pool_problems(catalogue, pool, spec.compute.gpus)
    if not why:
        why = [f"pool '{pool}' draws from Airflow pool '{catalogue.pools[pool].airflow_pool}', but this "
               f"model's train task holds slots of '{catalogue.pools[spec.compute.pool].airflow_pool}'"]
    return [f"compute_pool: {why[0].split(': ', 1)[-1]}; this model may use {allowed}"]


TUNING_FIELDS = ("trials", "parallel_trials", "sampler", "time_budget_minutes")


def tuning_request(spec: ModelSpec, params: dict[str, Any], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """A sweep's effective request (trials, parallel trials, sampler, time budget), or RunRequestError listing
    every problem: the form's bounds are Airflow's, these are the rules across fields and the conf's keys."""
    from mlops.spec.tuning import rounds_needed

    tuning = spec.tuning
    if tuning is None:
        raise RunRequestError(spec.name, ["the spec has no tuning section: add one to sweep its hyperparameters"])
    trials = _whole(params.get("trials"), tuning.trials)
    parallel = _whole(params.get("parallel_trials"), tuning.parallelism)
    minutes = _whole(params.get("time_budget_minutes"), tuning.time_budget_minutes)
    sampler = str(params.get("sampler") or tuning.sampler)
    problems = [*reference_problems(spec.trainer), *unknown_fields(conf or {}, list(TUNING_FIELDS))]
    for field, value, limit, spec_field in (("trials", trials, tuning.max_trials, "max_trials"),
                                            ("parallel_trials", parallel, tuning.max_parallelism, "max_parallelism"),
                                            ("time_budget_minutes", minutes, tuning.max_time_budget_minutes,
                                             "max_time_budget_minutes")):
        if value is None or value < 1:
            problems.append(f"{field}: give a whole number of at least 1 (the spec's default is "
                            f"{getattr(tuning, 'parallelism' if field == 'parallel_trials' else field)})")
        elif value > limit:
            problems.append(f"{field}: {value} is above this model's limit of {limit} (tuning.{spec_field}); ask "
                            f"for {limit} or fewer, or raise tuning.{spec_field} in the spec")
    if trials and parallel and trials >= 1 and parallel >= 1 and rounds_needed(trials, parallel) > tuning.rounds:
        least = rounds_needed(trials, tuning.rounds)
        problems.append(f"trials: {trials} trials at {parallel} at once take {rounds_needed(trials, parallel)} rounds "
                        f"and this sweep has {tuning.rounds} (tuning.rounds); raise parallel_trials to {least} or "
                        f"more, ask for at most {tuning.rounds * parallel} trials, or raise tuning.rounds")
    if sampler not in ("tpe", "random", "grid"):
        problems.append(f"sampler: '{sampler}' is not one of tpe, random, grid")
    elif sampler == "grid":
        problems += [f"sampler: grid needs discrete values, and tuning.parameters.{name} is a continuous float; give "
                     "it a `step` or choose tpe or random" for name, p in tuning.parameters.items()
                     if p.grid_values() is None]
    if problems:
        raise RunRequestError(spec.name, problems)
    return {"trials": trials, "parallel_trials": parallel, "sampler": sampler, "time_budget_minutes": minutes}


def _whole(value: Any, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return None
    return int(value)
