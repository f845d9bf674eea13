"""The PyTorch example trainer on its own: deterministic for a seed, a CPU model that survives pickling
(MLflow stores it that way), and better than predicting the mean."""

import pickle
from datetime import date

import numpy as np
import pandas as pd
import pytest
import torch

from mlops import synthetic
from trainers import demand_nn

PARAMS = {"hidden": 32, "layers": 2, "epochs": 15, "batch_size": 128, "learning_rate": 0.003, "seed": 3,
          "device": "cpu"}


@pytest.fixture(scope="module")
def frames():
    days = [synthetic.generate_partition("demand", date(2026, 1, d), seed=0) for d in range(1, 11)]
    df = pd.concat(days, ignore_index=True)
    return df.iloc[:2500], df.iloc[2500:]


def rmse(model, frame):
    return float(np.sqrt(np.mean((demand_nn.predict(model, frame) - frame["units_sold"]) ** 2)))


def test_same_seed_same_model_and_better_than_the_mean(frames):
    train, holdout = frames
    first, second = demand_nn.train(train, PARAMS), demand_nn.train(train, PARAMS)
    assert np.array_equal(demand_nn.predict(first, holdout), demand_nn.predict(second, holdout))
    baseline = float(np.sqrt(np.mean((holdout["units_sold"] - train["units_sold"].mean()) ** 2)))
    assert rmse(first, holdout) < 0.5 * baseline


def test_model_is_on_the_cpu_and_pickles(frames):
    train, holdout = frames
    model = demand_nn.train(train, PARAMS)
    assert {p.device.type for p in model.network.parameters()} == {"cpu"}
    restored = pickle.loads(pickle.dumps(model))
    assert np.allclose(demand_nn.predict(restored, holdout), demand_nn.predict(model, holdout))


def test_auto_device_follows_cuda_availability():
    assert demand_nn.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
