"""The PyTorch example trainer on its own, by what it does: it learns a known relationship, its loss falls
with training, it is deterministic for a seed (and only for that seed), it trains on the device it is given
and hands back a CPU model that survives pickling (MLflow stores it that way), and `epochs` and `batch_size`
decide how many optimiser steps it takes over which rows."""

import logging
import math
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


@pytest.fixture(scope="module")
def trained(frames):
    return demand_nn.train(frames[0], PARAMS)


def rmse(model, frame):
    return float(np.sqrt(np.mean((demand_nn.predict(model, frame) - frame["units_sold"]) ** 2)))


def test_same_seed_same_model_and_better_than_the_mean(frames, trained):
    train, holdout = frames
    first, second = trained, demand_nn.train(train, PARAMS)
    assert np.array_equal(demand_nn.predict(first, holdout), demand_nn.predict(second, holdout))
    baseline = float(np.sqrt(np.mean((holdout["units_sold"] - train["units_sold"].mean()) ** 2)))
    assert rmse(first, holdout) < 0.5 * baseline


def test_model_is_on_the_cpu_and_pickles(frames, trained):
    holdout, model = frames[1], trained
    assert {p.device.type for p in model.network.parameters()} == {"cpu"}
    restored = pickle.loads(pickle.dumps(model))
    assert np.allclose(demand_nn.predict(restored, holdout), demand_nn.predict(model, holdout))


def known_relationship(rows: int, seed: int) -> pd.DataFrame:
    """Demand that is an exact linear function of the features (plus a little noise), so a good fit is
    known in advance: the holdout's residuals must come down to about the noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "price": rng.uniform(1, 5, rows), "promo": rng.integers(0, 2, rows),
        "temperature": rng.normal(15, 8, rows), "day_of_week": rng.integers(0, 7, rows),
        "store": rng.choice(demand_nn.STORES, rows)})
    offset = frame["store"].map({"north": 0.0, "south": 10.0, "east": -5.0, "west": 5.0})
    frame["units_sold"] = (100 - 12 * frame["price"] + 25 * frame["promo"] + 0.5 * frame["temperature"]
                           + offset + rng.normal(0, 1.0, rows))
    return frame


SMALL = {"hidden": 16, "layers": 1, "batch_size": 64, "learning_rate": 0.01, "seed": 0, "device": "cpu"}


def test_learns_a_known_linear_relationship():
    train, holdout = known_relationship(1000, seed=1), known_relationship(400, seed=2)
    model = demand_nn.train(train, {**SMALL, "epochs": 40, "batch_size": 128})
    residual = demand_nn.predict(model, holdout) - holdout["units_sold"].to_numpy()
    assert float(np.sqrt(np.mean(residual ** 2))) < 2.0  # noise sd 1.0; the target's sd is about 20
    assert abs(float(np.mean(residual))) < 0.5  # no bias
    # The slope it learnt for price: a price rise of 1 takes about 12 units off every row.
    dearer = holdout.assign(price=holdout["price"] + 1)
    slope = demand_nn.predict(model, dearer) - demand_nn.predict(model, holdout)
    assert -14 < float(np.median(slope)) < -10


def test_training_loss_falls_with_more_epochs():
    train = known_relationship(600, seed=3)
    losses = [fit_figures(train, {**SMALL, "epochs": epochs})["train_loss_std_units"] for epochs in (1, 5, 25)]
    assert losses[0] > losses[1] > losses[2]
    assert losses[2] < 0.05  # standardised units: 5% of the variance left (the noise alone is about 0.3%)


def fit_figures(frame: pd.DataFrame, params: dict) -> dict:
    x = demand_nn._design(frame)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) == 0, 1.0, x.std(axis=0))
    y = frame["units_sold"].to_numpy(dtype="float32")
    _, figures = demand_nn.fit(x.astype("float32"), ((y - y.mean()) / y.std()).astype("float32"), params,
                               torch.device("cpu"))
    return figures


def test_another_seed_gives_another_model():
    train, holdout = known_relationship(600, seed=4), known_relationship(100, seed=5)
    first, again, other = (demand_nn.train(train, {**SMALL, "epochs": 2, "seed": seed}) for seed in (7, 7, 8))
    assert np.array_equal(demand_nn.predict(first, holdout), demand_nn.predict(again, holdout))
    assert not np.allclose(demand_nn.predict(first, holdout), demand_nn.predict(other, holdout))


def test_epochs_and_batch_size_set_the_optimiser_steps_and_every_row_is_seen_once_per_epoch(monkeypatch):
    """The real network, with a hook that records the rows of every forward pass in training mode."""
    batches: list[int] = []
    build = demand_nn.build_network

    def recorded(*args, **kwargs):
        network = build(*args, **kwargs)
        network.register_forward_pre_hook(lambda module, inputs: batches.append(len(inputs[0]))
                                          if module.training else None)
        return network

    monkeypatch.setattr(demand_nn, "build_network", recorded)
    rows, batch, epochs = 300, 64, 3
    demand_nn.train(known_relationship(rows, seed=6), {**SMALL, "epochs": epochs, "batch_size": batch})
    assert len(batches) == epochs * math.ceil(rows / batch)
    assert batches == epochs * ([batch] * (rows // batch) + [rows % batch])
    assert sum(batches) == epochs * rows


def test_trains_on_the_device_it_is_given_and_hands_back_a_cpu_model(caplog):
    frame = known_relationship(200, seed=7)
    with caplog.at_level(logging.INFO, logger=demand_nn.__name__):
        model = demand_nn.train(frame, {**SMALL, "epochs": 1, "device": "cpu"})
    assert "trained on cpu" in caplog.text
    assert {p.device.type for p in model.network.parameters()} == {"cpu"}
    # An explicit device is used as given, never swapped for another: a GPU asked for where there is none fails.
    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError)):
            demand_nn.train(frame, {**SMALL, "epochs": 1, "device": "cuda"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_a_gpu_when_asked_and_still_hands_back_a_cpu_model(caplog):
    frame = known_relationship(1500, seed=8)
    with caplog.at_level(logging.INFO, logger=demand_nn.__name__):
        model = demand_nn.train(frame, {**SMALL, "epochs": 40, "device": "cuda"})
    assert "trained on cuda" in caplog.text
    assert {p.device.type for p in model.network.parameters()} == {"cpu"}
    holdout = known_relationship(400, seed=2)
    assert float(np.sqrt(np.mean((demand_nn.predict(model, holdout) - holdout["units_sold"]) ** 2))) < 2.0


@pytest.mark.parametrize("available,expected", [(False, "cpu"), (True, "cuda")])
def test_auto_device_is_the_gpu_exactly_when_cuda_is_available(monkeypatch, available, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert demand_nn.pick_device("auto").type == expected
    assert demand_nn.pick_device("cpu").type == "cpu"  # an explicit choice is not second-guessed
