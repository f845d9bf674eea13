"""Metrics the platform knows, with their direction, computed the same way everywhere.

Scores are numpy arrays: for binary classification the probability of the positive class,
for regression the prediction. numpy is imported inside the functions so that the spec (and with it
DAG parsing) can read the catalogue without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

BINARY = "binary_classification"
REGRESSION = "regression"
TASKS = (BINARY, REGRESSION)


def _roc_auc(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    y = np.asarray(y, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann-Whitney U with average ranks for ties; fast enough to bootstrap.
    order = np.argsort(s, kind="mergesort")
    sorted_s = np.asarray(s)[order]
    ranks = np.empty(len(sorted_s), dtype=float)
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(sorted_s)]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _accuracy(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    return float(np.mean((np.asarray(s) >= 0.5) == np.asarray(y, dtype=bool)))


def _log_loss(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    p = np.clip(np.asarray(s, dtype=float), 1e-12, 1 - 1e-12)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _f1(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    y = np.asarray(y, dtype=bool)
    pred = np.asarray(s) >= 0.5
    tp = float(np.sum(pred & y))
    denom = float(np.sum(pred) + np.sum(y))
    return 2 * tp / denom if denom else 0.0


def _brier(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    return float(np.mean((np.asarray(s, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def _rmse(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(s, dtype=float) - np.asarray(y, dtype=float)) ** 2)))


def _mae(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    return float(np.mean(np.abs(np.asarray(s, dtype=float) - np.asarray(y, dtype=float))))


def _r2(y: ArrayLike, s: ArrayLike) -> float:
    import numpy as np

    y = np.asarray(y, dtype=float)
    ss_res = np.sum((y - np.asarray(s, dtype=float)) ** 2)
    ss_tot = np.sum((y - y.mean()) ** 2)
    return float(1 - ss_res / ss_tot) if ss_tot else float("nan")


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    higher_is_better: bool
    compute: Callable[[ArrayLike, ArrayLike], float]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", BINARY, True, _roc_auc),
        Metric("accuracy", BINARY, True, _accuracy),
        Metric("log_loss", BINARY, False, _log_loss),
        Metric("f1", BINARY, True, _f1),
        Metric("brier", BINARY, False, _brier),
        Metric("rmse", REGRESSION, False, _rmse),
        Metric("mae", REGRESSION, False, _mae),
        Metric("r2", REGRESSION, True, _r2),
    )
}


def metrics_for(task: str) -> list[str]:
    return [name for name, m in METRICS.items() if m.task == task]


def compute_all(task: str, y_true: ArrayLike, scores: ArrayLike) -> dict[str, float]:
    return {name: METRICS[name].compute(y_true, scores) for name in metrics_for(task)}
