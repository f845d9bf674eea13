"""Copies of the churn example that fail in a known way, as the only model of a test's DAG folder.

`failing_once`: a trainer that is churn's own, except that its first call fails as a network blip does (the
connection is reset), once per marker file; the marker's path is a hyperparameter, so one spec serves the
local subprocess and the emulated pod alike (both inherit PYTHONPATH, which `write` extends with this
folder). `rejected_hyperparameter`: C=-5, which scikit-learn refuses, as the spec's default with no range.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainers.churn import train as train_churn

MARKER = "fail_once_marker"


def train_failing_once(train_df, params):
    marker = Path(params[MARKER])
    if not marker.exists():
        marker.write_text("the first call failed\n")
        raise ConnectionResetError(104, "Connection reset by peer (the first call fails, for the retry tests)")
    return train_churn(train_df, params)


def write(tmp_path: Path, monkeypatch, *, trainer: dict | None = None, compute: dict | None = None) -> None:
    """churn with `trainer` and `compute` fields changed, as the only model of the DAG folder."""
    import yaml

    from helpers import MODELS, only_model

    spec = yaml.safe_load((MODELS / "churn.yaml").read_text())
    spec["trainer"].update(trainer or {})
    spec["compute"].update(compute or {})
    only_model(tmp_path, monkeypatch, spec, __name__)


def failing_once(tmp_path: Path, monkeypatch, **compute) -> Path:
    """The trainer fails on its first call only. Returns the marker, which exists once it has."""
    import yaml

    from helpers import MODELS

    marker = tmp_path / "fail-once.marker"
    hyperparameters = yaml.safe_load((MODELS / "churn.yaml").read_text())["trainer"]["hyperparameters"]
    write(tmp_path, monkeypatch, compute=compute,
          trainer={"function": f"{__name__}:train_failing_once",
                   "hyperparameters": {**hyperparameters, MARKER: str(marker)}})
    return marker


def rejected_hyperparameter(tmp_path: Path, monkeypatch, **compute) -> None:
    write(tmp_path, monkeypatch, compute=compute,
          trainer={"hyperparameters": {"C": -5, "max_iter": 300},
                   "hyperparameter_ranges": {"max_iter": {"min": 10, "max": 10000}}})


# --- models that misbehave only where they are served ---------------------------------------------------
# The model server's process has MLOPS_SERVING_MODEL set (the supervisor names the model it serves); the
# trainer and its evaluation, which also load the logged model, do not. So each of these trains, evaluates
# and registers like churn, and fails only as a served endpoint, as a model does whose serving environment
# differs from the training one.
# hyperparameter: "crash" | "offset" | "slow:<ms>" | "second-replica-crash:<marker file>" | "" (none)
SERVE_FAULT = "serve_fault"


class ServedFault:
    """churn's fitted pipeline, with a fault that shows once it is unpickled in a model server."""

    def __init__(self, model, fault: str):
        self.model, self.fault, self.served = model, fault, False

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.served = bool(os.environ.get("MLOPS_SERVING_MODEL"))
        if self.served and self.fault == "crash":
            raise RuntimeError("this model cannot load in the serving environment (a crash on purpose)")
        if self.served and self.fault.startswith("second-replica-crash:") \
                and os.environ.get("MLOPS_SERVING_ROLE") == "stable":
            # the first replica on the shared socket starts (and takes traffic), the second cannot
            marker = Path(self.fault.split(":", 1)[1])
            if marker.exists():
                raise RuntimeError("the second replica cannot load (a crash on purpose)")
            marker.write_text("the first replica started\n")

    @property
    def classes_(self):
        return self.model.classes_

    def predict_proba(self, frame):
        import time

        import numpy as np

        proba = self.model.predict_proba(frame)
        if not self.served:
            return proba
        if self.fault == "offset":
            shifted = np.clip(proba[:, 1] + 0.2, 0, 1)
            return np.column_stack([1 - shifted, shifted])
        if self.fault.startswith("slow:"):
            time.sleep(float(self.fault.split(":", 1)[1]) / 1000)
        return proba


def train_with_serving_fault(train_df, params):
    params = dict(params)
    fault = str(params.pop(SERVE_FAULT, "") or "")
    return ServedFault(train_churn(train_df, params), fault)


def serving(tmp_path: Path, monkeypatch, serving_section: dict) -> None:
    """churn with a serving section, trained by `train_with_serving_fault` (no fault by default)."""
    import yaml

    from helpers import MODELS

    hyperparameters = yaml.safe_load((MODELS / "churn.yaml").read_text())["trainer"]["hyperparameters"]
    write(tmp_path, monkeypatch, trainer={"function": f"{__name__}:train_with_serving_fault",
                                          "hyperparameters": {**hyperparameters, SERVE_FAULT: ""}})
    path = tmp_path / "models" / "churn.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["serving"] = serving_section
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
