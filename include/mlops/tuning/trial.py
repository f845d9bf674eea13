"""One trial of a sweep, in the trainer's process (`python -m mlops.train --trial-json ...`): the validated window
without the promotion holdout, the author's `train` on the fit split with the trial's parameters, the objective
on the validation split, and a child run of the sweep's MLflow run. No model is logged: a trial's model is never
promoted, the best parameters are retrained on the full window instead.

A trial with the same data fingerprint, spec hash, code version and parameters as a finished one reuses its
result (a child run tagged as a cache hit), so a sweep asked again trains nothing it has trained before.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from mlops.settings import Settings, get_settings
from mlops.spec import ModelSpec
from mlops.tuning.objective import Objective, objective_of, trial_split

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from mlops.trainer_run import RunContext

log = logging.getLogger("mlops.tuning.trial")


class ObjectiveError(RuntimeError):
    """The objective cannot be measured for this trial (a permanent failure of the trial)."""


def run_trial(spec: ModelSpec, ctx: RunContext, trial: dict[str, Any],
              settings: Settings | None = None) -> dict[str, Any]:
    from mlops import tracking
    from mlops.trainer_run import cache_key, code_version, effective_params, load_validated, run_tags

    settings = settings or get_settings()
    tracking.switch_off_telemetry()
    params = effective_params(spec, trial["params"])
    loaded, fingerprint = load_validated(spec, ctx, settings)
    objective = objective_of(spec)
    spec_hash, code = spec.content_hash(), code_version(spec)
    fraction = spec.tuning.validation_fraction if spec.tuning else None
    key = "trial-" + cache_key(fingerprint, spec_hash, code, {"params": params, "validation_fraction": fraction,
                                                               "metric": objective.metric})
    tags = {**run_tags(spec, ctx, loaded, fingerprint, spec_hash, code, settings), tracking.CACHE_KEY: key,
            tracking.KIND: "trial", tracking.TRIAL_NUMBER: str(trial["number"]),
            tracking.SWEEP_STUDY: str(trial.get("study") or "")}
    if trial.get("parent_run_id"):
        tags |= {tracking.PARENT_RUN: trial["parent_run_id"], tracking.SWEEP_RUN: trial["parent_run_id"]}
    client = tracking.client(settings)
    exp_id = tracking.experiment_id(settings, spec.name)
    base = {"number": trial["number"], "params": trial["params"], "fingerprint": fingerprint, "cache_key": key}
    cached = _cached(client, exp_id, key)
    if cached is not None:
        return {**base, **_reuse(client, exp_id, cached, objective, tags, trial)}
    fit, validation = trial_split(spec, loaded)
    outcome = _fit(spec, objective, fit, validation, params, trial.get("pruning"))
    run_id = _log(client, exp_id, tags, trial, params, objective, outcome, len(fit), len(validation))
    log.info("trial %s: %s %s=%s after %.2f s of fitting (run %s)", trial["number"], outcome["state"],
             objective.key, outcome["value"], outcome["fit_seconds"], run_id)
    return {**base, **outcome, "run_id": run_id, "cache_hit": False}


def _fit(spec: ModelSpec, objective: Objective, fit: Any, validation: Any, params: dict[str, Any],
         pruning: dict[str, Any] | None) -> dict[str, Any]:
    """The author's train call with `report` wired to the validation split and the pruner; its own time."""
    from mlops import authoring
    from mlops.tuning.pruning import SnapshotPruner

    pruner = SnapshotPruner(pruning) if pruning else None
    features = list(spec.dataset.features)
    x_val, y_val = validation[features], validation[spec.dataset.target].to_numpy()
    intermediate: list[tuple[int, float]] = []
    reporting = [0.0]  # seconds spent scoring reports: the platform's time, not the trainer's

    def reporter(step: int, model: Any) -> None:
        started = time.perf_counter()
        value = _measure(spec, objective, model, x_val, y_val)
        intermediate.append((step, value))
        stop = pruner is not None and pruner.prune_after(step, value)
        reporting[0] += time.perf_counter() - started
        if stop:
            raise authoring.TrialPruned(f"pruned at step {step} ({objective.key} {value:.6g} is worse than the "
                                        "median of finished trials there)")

    train_fn = authoring.resolve(spec.trainer.function)
    state, model = "complete", None
    authoring._reporter = reporter
    started = time.perf_counter()
    try:
        model = train_fn(fit.copy(), dict(params))
    except authoring.TrialPruned as exc:
        state = "pruned"
        log.info("%s", exc)
    except Exception as exc:
        raise authoring.AuthoringError(f"{spec.trainer.function} raised {type(exc).__name__}: {exc}") from exc
    finally:
        authoring._reporter = None
    fit_seconds = time.perf_counter() - started - reporting[0]
    if state == "pruned":
        value = intermediate[-1][1]
    else:
        value = _measure(spec, objective, model, x_val, y_val)
    return {"state": state, "value": value, "intermediate": intermediate, "fit_seconds": round(fit_seconds, 4)}


def _measure(spec: ModelSpec, objective: Objective, model: Any, x_val: Any, y_val: Any) -> float:
    from mlops.authoring import score
    from mlops.metrics import METRICS

    value = METRICS[objective.metric].compute(y_val, score(model, x_val, spec.dataset.task, spec.trainer.predict))
    if not math.isfinite(value):
        raise ObjectiveError(f"{spec.name}: {objective.metric} on the validation split is {value} (a split with one "
                             "class, or predictions that are not finite); widen tuning.validation_fraction or "
                             "check the trainer")
    return float(value)


def _log(client: MlflowClient, exp_id: str, tags: dict[str, str], trial: dict[str, Any], params: dict[str, Any],
         objective: Objective, outcome: dict[str, Any], fit_rows: int, validation_rows: int) -> str:
    """The trial as a child run of the sweep, in three calls (the trial's own overhead counts)."""
    from mlflow.entities import Metric, Param, RunTag

    from mlops import tracking

    now = int(time.time() * 1000)
    run = client.create_run(exp_id, run_name=f"trial {trial['number']}",
                            tags={**tags, tracking.TRIAL_STATE: outcome["state"]})
    metrics = [Metric(objective.key, outcome["value"], now, 0), Metric("fit_seconds", outcome["fit_seconds"], now, 0)]
    metrics += [Metric(f"{objective.key}_by_step", value, now, step) for step, value in outcome["intermediate"]]
    logged = [Param(f"hp.{k}", str(v)[:6000]) for k, v in params.items()]
    logged += [Param("fit_rows", str(fit_rows)), Param("validation_rows", str(validation_rows))]
    client.log_batch(run.info.run_id, metrics=metrics, params=logged,
                     tags=[RunTag("mlops.tuning.label", str(trial.get("label", "")))])
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def _cached(client: MlflowClient, exp_id: str, key: str) -> Run | None:
    """A finished, complete trial with this cache key (a pruned one depended on the trials before it)."""
    from mlops import tracking

    runs = client.search_runs(
        [exp_id], filter_string=f"tags.`{tracking.CACHE_KEY}` = '{key}' and tags.`{tracking.TRIAL_STATE}` = "
                                "'complete' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"], max_results=1)
    return runs[0] if runs else None


def _reuse(client: MlflowClient, exp_id: str, cached: Run, objective: Objective, tags: dict[str, str],
           trial: dict[str, Any]) -> dict[str, Any]:
    from mlflow.entities import Metric, RunTag

    from mlops import tracking

    original = cached.data.tags.get(tracking.REUSED_RUN) or cached.info.run_id
    value = float(cached.data.metrics[objective.key])
    steps = [(m.step, m.value) for m in client.get_metric_history(cached.info.run_id, f"{objective.key}_by_step")]
    now = int(time.time() * 1000)
    run = client.create_run(exp_id, run_name=f"trial {trial['number']} (cache hit)",
                            tags={**tags, tracking.TRIAL_STATE: "complete", tracking.CACHE_HIT: "true",
                                  tracking.REUSED_RUN: original})
    client.log_batch(run.info.run_id, metrics=[Metric(objective.key, value, now, 0)],
                     tags=[RunTag("mlops.tuning.label", str(trial.get("label", "")))])
    client.set_terminated(run.info.run_id)
    log.info("trial %s: cache hit, reusing run %s (%s=%s); logged as run %s", trial["number"], original,
             objective.key, value, run.info.run_id)
    return {"state": "complete", "value": value, "intermediate": sorted(steps), "fit_seconds": 0.0,
            "run_id": str(run.info.run_id), "reused_run_id": original, "cache_hit": True}
