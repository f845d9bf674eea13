"""Demand regressor as a small PyTorch network: trains on a GPU when the pod (or machine) has one, on the
CPU otherwise, and always hands back a CPU model so it scores anywhere.

The network sees standardised numeric features and a one-hot store; the target is standardised too, so
one learning rate suits any scale. Device, throughput and the final training loss are logged to the
MLflow run the platform opened. In a hyperparameter sweep each epoch is reported (mlops.authoring.report), so
the median pruner can stop a trial that learns too slowly.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from mlops.authoring import report, reporting

FEATURES = ["price", "promo", "temperature", "day_of_week"]
STORES = ["north", "south", "east", "west"]
log = logging.getLogger(__name__)


def _design(df: pd.DataFrame) -> np.ndarray:
    stores = pd.get_dummies(pd.Categorical(df["store"], categories=STORES), prefix="store")
    return np.hstack([df[FEATURES].to_numpy(dtype="float32"), stores.to_numpy(dtype="float32")])


class DemandNet:
    """The trained network with the scaling it was trained with; picklable, CPU-only."""

    def __init__(self, network, x_mean, x_std, y_mean, y_std):
        self.network, self.x_mean, self.x_std, self.y_mean, self.y_std = network, x_mean, x_std, y_mean, y_std

    def predict(self, features_df: pd.DataFrame) -> np.ndarray:
        import torch

        x = torch.from_numpy((_design(features_df) - self.x_mean) / self.x_std)
        self.network.eval()
        with torch.no_grad():
            return self.network(x).squeeze(1).numpy().astype("float64") * self.y_std + self.y_mean


def pick_device(preferred: str = "auto"):
    import torch

    if preferred == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preferred)


def build_network(inputs: int, hidden: int, layers: int):
    from torch import nn

    blocks, width = [], inputs
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*blocks, nn.Linear(width, 1))


def fit(x: np.ndarray, y: np.ndarray, params: dict, device, on_epoch=None) -> tuple[object, dict]:
    """Mini-batch Adam on `device`; returns the network (on the CPU) and training figures. `on_epoch(epoch,
    network)` is called after each epoch (a sweep's pruner looks there)."""
    import torch

    torch.manual_seed(int(params.get("seed") or 0))
    network = build_network(x.shape[1], int(params.get("hidden", 64)), int(params.get("layers", 2))).to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=float(params.get("learning_rate", 3e-3)),
                                 weight_decay=float(params.get("weight_decay", 0.0)))
    xs, ys = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device).unsqueeze(1)
    batch, epochs = int(params.get("batch_size", 256)), int(params.get("epochs", 60))
    generator = torch.Generator(device="cpu").manual_seed(int(params.get("seed") or 0))
    loss_fn = torch.nn.MSELoss()
    network.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=generator).to(device)
        for start in range(0, len(xs), batch):
            rows = order[start:start + batch]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(network(xs[rows]), ys[rows])
            loss.backward()
            optimiser.step()
        if on_epoch is not None:
            on_epoch(epoch, network)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    network.eval()
    with torch.no_grad():
        final_loss = float(loss_fn(network(xs), ys))
    figures = {"train_seconds": seconds, "train_samples_per_s": len(xs) * epochs / max(seconds, 1e-9),
               "train_loss_std_units": final_loss}
    return network.cpu(), figures


def train(train_df: pd.DataFrame, params: dict) -> DemandNet:
    x = _design(train_df)
    y = train_df["units_sold"].to_numpy(dtype="float32")
    x_mean, x_std = x.mean(axis=0), x.std(axis=0)
    x_std[x_std == 0] = 1.0  # a constant column (one weekday in the window) must not divide by zero
    y_mean, y_std = float(y.mean()), float(y.std() or 1.0)
    device = pick_device(str(params.get("device", "auto")))

    def on_epoch(epoch: int, network) -> None:
        # In a sweep's trial: the network so far, scored on the validation split (it may stop the trial here).
        import copy

        network.eval()
        report(epoch, DemandNet(copy.deepcopy(network).cpu(), x_mean, x_std, y_mean, y_std))
        network.train()

    network, figures = fit((x - x_mean) / x_std, (y - y_mean) / y_std, params, device,
                           on_epoch if reporting() else None)
    log.info("trained on %s: %.0f samples/s over %.2f s", device, figures["train_samples_per_s"],
             figures["train_seconds"])
    _log_to_mlflow(device, figures)
    return DemandNet(network, x_mean, x_std, y_mean, y_std)


def predict(model: DemandNet, features_df: pd.DataFrame) -> np.ndarray:
    return model.predict(features_df)


def _log_to_mlflow(device, figures: dict) -> None:
    import mlflow
    import torch

    if mlflow.active_run() is None:  # called outside the platform (a notebook, the benchmark)
        return
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    mlflow.set_tags({"mlops.train.device": str(device), "mlops.train.gpu": gpu, "mlops.train.torch": torch.__version__})
    mlflow.log_metrics(figures)
