"""A sweep's record in MLflow: one parent run per study (found again when the sweep resumes), updated after
every round with the best value so far, and closed with the trial table, the optimisation history plot and its
best trial; the trials are its child runs (mlops.tuning.trial)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops.settings import Settings
from mlops.spec import ModelSpec
from mlops.tuning.study import Sweep, seed_of


def open_parent(settings: Settings, spec: ModelSpec, sweep: Sweep, dag_id: str, run_id: str) -> str:
    """The study's parent run: the one an earlier attempt at this study left, or a new one."""
    from mlflow.entities import Param, RunTag

    from mlops import tracking

    client = tracking.client(settings)
    exp_id = tracking.experiment_id(settings, spec.name)
    found = client.search_runs([exp_id], filter_string=f"tags.`{tracking.SWEEP_STUDY}` = '{sweep.study}' and "
                                                      f"tags.`{tracking.KIND}` = 'sweep'", max_results=1)
    if found:
        parent = found[0].info.run_id
        client.update_run(parent, status="RUNNING")
        client.set_tag(parent, tracking.RUN_ID, run_id)  # the run that sweeps it now
        return str(parent)
    tuning = spec.tuning
    if tuning is None:
        raise ValueError(f"{spec.name}: the spec has no tuning section")
    run = client.create_run(exp_id, run_name=f"sweep {sweep.study}", tags={
        tracking.MODEL: spec.name, tracking.KIND: "sweep", tracking.SWEEP_STUDY: sweep.study,
        tracking.DAG_ID: dag_id, tracking.RUN_ID: run_id})
    params = {f"space.{name}": p.describe() for name, p in tuning.parameters.items()}
    params |= {"metric": sweep.metric, "direction": sweep.direction, "sampler": sweep.sampler,
               "pruner": tuning.pruner, "validation_fraction": str(tuning.validation_fraction),
               "seed": str(seed_of(spec)), "startup_trials": str(tuning.startup_trials)}
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                     tags=[RunTag("mlops.tuning.space", json.dumps({n: p.model_dump(mode="json", exclude_none=True)
                                                                   for n, p in tuning.parameters.items()}))])
    return str(run.info.run_id)


def record_round(settings: Settings, parent: str, summary: dict[str, Any], sweep: Sweep) -> None:
    """The budget, the counts and the best value so far, by finished trials (MLflow charts them)."""
    from mlflow.entities import Metric

    from mlops import tracking

    now, step = int(time.time() * 1000), int(summary["finished"])
    counts = summary["counts"]
    metrics = [Metric(f"trials_{state}", float(counts.get(state, 0)), now, step)
               for state in ("complete", "pruned", "fail")]
    metrics.append(Metric("trials_target", float(sweep.trials), now, step))
    if summary["best"] is not None:
        metrics.append(Metric("best_value", float(summary["best"]["value"]), now, step))
    tracking.client(settings).log_batch(parent, metrics=metrics)


def close(settings: Settings, parent: str, summary: dict[str, Any], sweep: Sweep, finished: bool) -> None:
    """The trial table and history plot as artifacts, the best trial as tags; FINISHED when the budget was met."""
    from mlops import tracking
    from mlops.tuning.history import svg

    client = tracking.client(settings)
    best = summary["best"]
    if best is not None:
        client.set_tag(parent, tracking.SWEEP_BEST_TRIAL, str(best["number"]))
        client.set_tag(parent, "mlops.tuning.best_params", json.dumps(best["params"], sort_keys=True))
        if best.get("run_id"):
            client.set_tag(parent, tracking.SWEEP_BEST_RUN, best["run_id"])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "trials.json").write_text(json.dumps(summary, indent=1, default=str))
        (Path(tmp) / "optimization_history.svg").write_text(svg(summary, sweep.metric))
        client.log_artifacts(parent, tmp, "sweep")
    client.set_terminated(parent, "FINISHED" if finished else "KILLED")
