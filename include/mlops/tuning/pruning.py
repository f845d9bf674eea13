"""Pruning without a connection from the trainer to the study: the tell side hands each trial a snapshot of
the finished trials' intermediate values, and the trial asks Optuna's own MedianPruner, over an in-memory study
holding that snapshot, after each value it reports. Trials finished after the snapshot was taken are not seen;
that is the price of a trainer (a pod) that needs no database credentials."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

MAX_SNAPSHOT_BYTES = 60_000  # it travels on the trainer's command line (one argument is capped at 128 KiB)


def snapshot(study: optuna.Study, startup_trials: int, warmup_steps: int) -> dict[str, Any]:
    """What the median rule needs: the finished trials' values at each step (newest kept when it is large)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    trials = [{"value": t.value, "steps": {str(k): v for k, v in t.intermediate_values.items()}} for t in complete]
    out = {"direction": study.direction.name.lower(), "startup_trials": startup_trials,
           "warmup_steps": warmup_steps, "trials": trials}
    while trials and len(json.dumps(out)) > MAX_SNAPSHOT_BYTES:
        trials.pop(0)
    return out


class SnapshotPruner:
    """Optuna's MedianPruner deciding for one running trial against a snapshot of the study."""

    def __init__(self, snap: dict[str, Any]):
        import optuna
        from optuna.distributions import FloatDistribution
        from optuna.trial import TrialState, create_trial

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(
            direction=snap["direction"],
            pruner=optuna.pruners.MedianPruner(n_startup_trials=int(snap["startup_trials"]),
                                               n_warmup_steps=int(snap["warmup_steps"])))
        # The trials need a distribution each to be added; the values are what matters to the pruner.
        self._study.add_trials([
            create_trial(state=TrialState.COMPLETE, value=t["value"], params={"_": 0.0},
                         distributions={"_": FloatDistribution(0.0, 1.0)},
                         intermediate_values={int(k): v for k, v in t["steps"].items()})
            for t in snap["trials"]])
        self._trial = self._study.ask()

    def prune_after(self, step: int, value: float) -> bool:
        self._trial.report(value, step)
        return bool(self._trial.should_prune())
