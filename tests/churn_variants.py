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

    from helpers import MODELS

    spec = yaml.safe_load((MODELS / "churn.yaml").read_text())
    spec["trainer"].update(trainer or {})
    spec["compute"].update(compute or {})
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "churn.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    monkeypatch.setenv("MLOPS_TRAINER_PACKAGES", f"trainers,{__name__}")
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))


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
