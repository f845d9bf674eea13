"""Trainers and specs for the sweep tests, on the demand data of mlops.synthetic: units sold are a linear function
of the features plus Gaussian noise of standard deviation 4, so the best RMSE any model can reach is known (about
4.0). A ridge regression reaches it once its penalty is small and it is given the weekend indicator (sales jump
on days 5 and 6, which no straight line in day_of_week fits); the spec's defaults (penalty 1000, no weekend
indicator) are far from it.

`train_sgd` learns in epochs and reports each one (mlops.authoring.report), for the pruning tests: with a tiny
learning rate its early epochs are far worse than the median, and the median pruner stops it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops.authoring import report

NOISE_RMSE = 4.0  # the generator's noise: no model can do better on unseen rows
FEATURES = ["price", "promo", "temperature", "day_of_week"]
STORES = ["north", "south", "east", "west"]


def _design(df: pd.DataFrame, weekend: bool = True) -> np.ndarray:
    stores = pd.get_dummies(pd.Categorical(df["store"], categories=STORES)).to_numpy(dtype="float64")
    columns = [df[FEATURES].to_numpy(dtype="float64"), stores]
    if weekend:
        columns.append((df[["day_of_week"]].to_numpy() >= 5).astype("float64"))
    return np.hstack(columns)


class Ridged:
    def __init__(self, model, weekend: bool):
        self.model, self.weekend = model, weekend


def train_ridge(train_df, params):
    from sklearn.linear_model import Ridge

    weekend = bool(params["weekend"])
    model = Ridge(alpha=float(params["alpha"])).fit(_design(train_df, weekend), train_df["units_sold"].to_numpy())
    return Ridged(model, weekend)


def train_ridge_slowly(train_df, params):
    """train_ridge after `seconds` of sleep: a trial long enough to be watched running, and stopped."""
    import time

    time.sleep(float(params["seconds"]))
    return train_ridge(train_df, params)


class Scaled:
    """A standardising step and a linear model trained by SGD; what `predict` scores."""

    def __init__(self, mean, scale, model):
        self.mean, self.scale, self.model = mean, scale, model


def train_sgd(train_df, params):
    from sklearn.linear_model import SGDRegressor

    x = _design(train_df)
    y = train_df["units_sold"].to_numpy()
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    xs = (x - mean) / scale
    model = SGDRegressor(learning_rate="constant", eta0=float(params["eta0"]), random_state=params.get("seed"))
    rng = np.random.default_rng(params.get("seed"))
    for epoch in range(int(params["epochs"])):
        order = rng.permutation(len(xs))
        model.partial_fit(xs[order], y[order])
        report(epoch, Scaled(mean, scale, model))
    return Scaled(mean, scale, model)


def predict(model, features_df):
    if isinstance(model, Ridged):
        return model.model.predict(_design(features_df, model.weekend))
    x = _design(features_df)
    return model.model.predict((x - model.mean) / model.scale)


RIDGE_TUNING = {
    "parameters": {"alpha": {"type": "float", "low": 0.001, "high": 10000.0, "log": True},
                   "weekend": {"type": "categorical", "choices": [True, False]}},
    "trials": 8, "parallelism": 2, "rounds": 6, "startup_trials": 4, "pruner": "none",
}
SGD_TUNING = {
    "parameters": {"eta0": {"type": "float", "low": 1e-7, "high": 0.01, "log": True}},
    "trials": 8, "parallelism": 2, "rounds": 6, "startup_trials": 3, "pruner": "median", "sampler": "random",
    "include_defaults": False,
}


def write(tmp_path: Path, monkeypatch, *, sgd: bool = False, tuning: dict | None = None,
          compute: dict | None = None) -> dict:
    """demand with the ridge (or SGD) trainer and a tuning section, as the only model of the DAG folder."""
    import yaml

    from helpers import MODELS, only_model

    spec = yaml.safe_load((MODELS / "demand.yaml").read_text())
    if sgd:
        spec["trainer"] = {"function": f"{__name__}:train_sgd", "predict": f"{__name__}:predict",
                           "hyperparameters": {"eta0": 0.001, "epochs": 12}, "seed": 7}
        spec["tuning"] = {**SGD_TUNING, **(tuning or {})}
    else:
        spec["trainer"] = {"function": f"{__name__}:train_ridge", "predict": f"{__name__}:predict",
                           "hyperparameters": {"alpha": 1000.0, "weekend": False}, "seed": 7}
        spec["tuning"] = {**RIDGE_TUNING, **(tuning or {})}
    spec["evaluation"]["guardrails"] = [{"metric": "r2", "min": 0.5}]
    spec.pop("serving", None)
    spec["compute"].update(compute or {})
    only_model(tmp_path, monkeypatch, spec, __name__)
    return spec
