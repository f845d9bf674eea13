"""A sweep's study: its name (what it searches, on which data and code), its sampler and pruner, and the
ask and tell steps the tune DAG's tasks call.

The study is named by everything that makes its trials comparable (data fingerprint, spec hash, code version,
search space, objective, sampler, pruner, seed), so a sweep triggered again on the same data continues the same
study: finished trials are kept, failed ones are asked again, and a study that already has its trials asks none.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from mlops.spec import ModelSpec
from mlops.spec.tuning import Tuning
from mlops.tuning.objective import objective_of

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

LOST = "its task ended without telling a result (killed, timed out or its worker was lost)"


@dataclass(frozen=True)
class Sweep:
    """What every task of one sweep run needs; travels between them as XCom."""

    model: str
    study: str
    metric: str
    direction: str
    trials: int
    parallelism: int
    time_budget_minutes: int
    sampler: str
    started_at: str
    parent_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Sweep":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def minutes_used(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (now - datetime.fromisoformat(self.started_at)).total_seconds() / 60


def seed_of(spec: ModelSpec) -> int:
    tuning = _tuning(spec)
    return tuning.seed if tuning.seed is not None else spec.trainer.seed


def study_name(spec: ModelSpec, fingerprint: str, code_version: str, sampler: str) -> str:
    tuning = _tuning(spec)
    objective = objective_of(spec)
    identity = {
        "fingerprint": fingerprint, "spec": spec.content_hash(), "code": code_version, "sampler": sampler,
        "space": {n: p.model_dump(mode="json") for n, p in sorted(tuning.parameters.items())},
        "objective": [objective.metric, objective.direction, tuning.validation_fraction],
        "pruner": [tuning.pruner, tuning.startup_trials, tuning.warmup_steps], "seed": seed_of(spec),
        "defaults": tuning.include_defaults,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{spec.name}-{key}"


def new_sweep(spec: ModelSpec, name: str, trials: int, parallelism: int, minutes: int, sampler: str) -> Sweep:
    objective = objective_of(spec)
    return Sweep(spec.name, name, objective.metric, objective.direction, trials, parallelism, minutes, sampler,
                 datetime.now(timezone.utc).isoformat())


def sampler_for(spec: ModelSpec, name: str, trials_so_far: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler per ask: its seed moves with the study's size, so each round draws new values and a
    study asked again with the same history asks the same parameters (which the trial cache then reuses)."""
    import optuna

    tuning = _tuning(spec)
    seed = seed_of(spec) + trials_so_far
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "grid":
            # Its seed shuffles the grid, and trial numbers index it: one seed for the study keeps points apart.
            return optuna.samplers.GridSampler(tuning.grid(), seed=seed_of(spec))
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # constant_liar: trials asked together (one round) are spread out instead of landing on one point.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tuning.startup_trials, constant_liar=True)


def pruner_for(spec: ModelSpec) -> optuna.pruners.BasePruner:
    import optuna

    tuning = _tuning(spec)
    if tuning.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tuning.startup_trials, n_warmup_steps=tuning.warmup_steps)
    return optuna.pruners.NopPruner()


def load_study(storage: RDBStorage, spec: ModelSpec, sweep: Sweep) -> optuna.Study:
    """The sweep's study, created on first use; the sampler is fitted to its current size."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction: Literal["minimize", "maximize"] = "maximize" if sweep.direction == "maximize" else "minimize"
    study = optuna.create_study(storage=storage, study_name=sweep.study, direction=direction,
                                load_if_exists=True, pruner=pruner_for(spec))
    study.sampler = sampler_for(spec, sweep.sampler, len(study.get_trials(deepcopy=False)))
    if not study.user_attrs:
        study.set_user_attr("model", spec.name)
        study.set_user_attr("metric", sweep.metric)
        study.set_user_attr("space", {n: p.describe() for n, p in _tuning(spec).parameters.items()})
    return study


def open_existing(storage: RDBStorage, name: str) -> optuna.Study:
    """A study that exists, for telling (no sampler needed)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage)


def trial_state(study: optuna.Study, number: int) -> str:
    return _trial(study, number).state.name.lower()


def finished(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards the sweep's budget: complete, and pruned (their verdict is final too)."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def reap(study: optuna.Study, reason: str = LOST) -> list[int]:
    """Fail every trial still marked running. Called only where no trial of the study can be running (before a
    round asks, after a round's tasks are done): what is left running was killed without telling."""
    from optuna.trial import TrialState

    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        fail(study, trial.number, reason)
        reaped.append(trial.number)
    return reaped


def fail(study: optuna.Study, number: int, reason: str) -> None:
    from optuna.trial import TrialState

    trial = _trial(study, number)
    if trial.state.is_finished():
        return
    study._storage.set_trial_user_attr(trial._trial_id, "failure", reason[:2000])
    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)


def ask(study: optuna.Study, spec: ModelSpec, sweep: Sweep, round_no: int, size: int) -> list[dict[str, Any]]:
    """Up to `size` new trials, never more than the budget still needs: each as the task that runs it sees it
    (number, parameters, a label for the UI, the pruning snapshot)."""
    from mlops.tuning import pruning

    tuning = _tuning(spec)
    reap(study)
    wanted = min(size, sweep.trials - len(finished(study)), _grid_left(study, spec, sweep))
    if wanted <= 0:
        return []
    space = {name: p.distribution() for name, p in tuning.parameters.items()}
    _enqueue_defaults(study, spec, sweep)
    snap = pruning.snapshot(study, tuning.startup_trials, tuning.warmup_steps) if tuning.pruner != "none" else None
    asked = []
    for _ in range(wanted):
        trial = study.ask(space)
        trial.set_user_attr("round", round_no)
        defaults = bool(trial.user_attrs.get("defaults"))
        asked.append({"number": trial.number, "params": dict(trial.params), "round": round_no, "defaults": defaults,
                      "label": label(trial.number, trial.params, defaults), "pruning": snap})
    return asked


def tell(study: optuna.Study, result: dict[str, Any]) -> None:
    """A trial's result from the trainer: its intermediate values, then complete (with its value) or pruned."""
    from optuna.trial import TrialState

    number = int(result["number"])
    trial = _trial(study, number)
    if trial.state.is_finished():
        return
    storage = study._storage
    for step, value in result.get("intermediate") or []:
        storage.set_trial_intermediate_value(trial._trial_id, int(step), float(value))
    for key in ("run_id", "cache_hit", "fit_seconds", "reused_run_id"):
        if result.get(key) is not None:
            storage.set_trial_user_attr(trial._trial_id, key, result[key])
    try:
        if result["state"] == "pruned":
            study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            study.tell(number, float(result["value"]), skip_if_finished=True)
    except RuntimeError as exc:
        # The grid sampler stops the study once its grid is done, which Optuna only allows inside optimize();
        # the trial's state is stored before that, and the sweep's own budget says when to stop.
        if "Study.stop" not in str(exc):
            raise


def summary(study: optuna.Study) -> dict[str, Any]:
    """Counts by state, the best complete trial and every trial's outcome, in number order."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                                  TrialState.RUNNING)}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = None
    if complete:
        top = study.best_trial
        best = {"number": top.number, "value": top.value, "params": dict(top.params),
                "run_id": top.user_attrs.get("run_id"), "defaults": bool(top.user_attrs.get("defaults")),
                "label": label(top.number, top.params, bool(top.user_attrs.get("defaults")))}
    history = [{"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": dict(t.params),
                "round": t.user_attrs.get("round"), "defaults": bool(t.user_attrs.get("defaults")),
                "failure": t.user_attrs.get("failure"), "run_id": t.user_attrs.get("run_id"),
                "cache_hit": t.user_attrs.get("cache_hit"), "steps": len(t.intermediate_values)}
               for t in trials]
    return {"study": study.study_name, "direction": study.direction.name.lower(), "counts": counts, "best": best,
            "finished": counts["complete"] + counts["pruned"], "history": history}


def label(number: int, params: dict[str, Any], defaults: bool = False) -> str:
    """How the UI names a trial's task: its number and parameters (Airflow keeps 250 characters)."""
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))
    text = f"#{number}{' (spec defaults)' if defaults else ''} {shown}"
    return text if len(text) <= 250 else text[:249] + "…"


def _enqueue_defaults(study: optuna.Study, spec: ModelSpec, sweep: Sweep) -> None:
    """The spec's own hyperparameters as the study's first trial, once (again only if that trial failed)."""
    from optuna.trial import TrialState

    tuning = _tuning(spec)
    if not tuning.include_defaults or sweep.sampler == "grid":
        return
    if any(t.user_attrs.get("defaults") for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL):
        return
    defaults = {name: spec.trainer.hyperparameters.get(name) for name in tuning.parameters}
    if all(tuning.parameters[name].contains(value) for name, value in defaults.items()):
        study.enqueue_trial(defaults, user_attrs={"defaults": True})


def _grid_left(study: optuna.Study, spec: ModelSpec, sweep: Sweep) -> int:
    """Grid points not yet finished or running (the grid sampler would repeat one otherwise)."""
    from optuna.trial import TrialState

    if sweep.sampler != "grid":
        return sweep.trials
    size = 1
    for values in _tuning(spec).grid().values():
        size *= len(values)
    taken = {json.dumps(t.params, sort_keys=True) for t in study.get_trials(deepcopy=False)
             if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)}
    return size - len(taken)


def _trial(study: optuna.Study, number: int) -> FrozenTrial:
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number:
            return trial
    raise KeyError(f"study {study.study_name} has no trial {number}")


def _tuning(spec: ModelSpec) -> Tuning:
    if spec.tuning is None:
        raise ValueError(f"{spec.name}: the spec has no tuning section; add one to sweep its hyperparameters")
    return spec.tuning
