"""What a sweep optimises: a metric on a validation split cut from the training part of the window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.metrics import METRICS
from mlops.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

    from mlops.data import WindowData


@dataclass(frozen=True)
class Objective:
    metric: str
    maximize: bool

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    @property
    def key(self) -> str:
        """The MLflow metric the trials log it as."""
        return f"val_{self.metric}"

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b


def objective_of(spec: ModelSpec) -> Objective:
    if spec.tuning is None or spec.tuning.metric is None:
        return Objective(spec.evaluation.primary_metric, spec.evaluation.maximize)
    return Objective(spec.tuning.metric, METRICS[spec.tuning.metric].higher_is_better)


def trial_split(spec: ModelSpec, loaded: WindowData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, validation): the promotion holdout is removed first, so no trial ever sees it; the validation split
    is then cut from what is left the way the holdout is cut (the last days, or a seeded sample)."""
    from mlops.data import holdout_mask

    if spec.tuning is None:
        raise ValueError(f"{spec.name}: the spec has no tuning section")
    holdout = spec.evaluation.holdout
    frame = loaded.frame[spec.dataset.columns]
    is_holdout, _ = holdout_mask(spec, loaded.row_day, holdout.fraction, holdout.strategy, spec.trainer.seed)
    train, train_days = frame[~is_holdout].reset_index(drop=True), loaded.row_day[~is_holdout]
    is_validation, _ = holdout_mask(spec, train_days, spec.tuning.validation_fraction, holdout.strategy,
                                    spec.trainer.seed + 1)
    return train[~is_validation].reset_index(drop=True), train[is_validation].reset_index(drop=True)
