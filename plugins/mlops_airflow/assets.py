"""The Assets a model's DAGs exchange: its champion (train -> score, monitor), its predictions (score ->
monitor's quality check) and its retraining requests (monitor -> train, data-aware scheduling)."""

from __future__ import annotations

from airflow.sdk import Asset

from mlops.spec import ModelSpec


def champion_asset(spec: ModelSpec) -> Asset:
    """Updated when a training run moves the champion alias (promote is skipped otherwise)."""
    return Asset(name=f"{spec.name}_champion", uri=spec.asset_uri("champion"), group="mlops-models")


def predictions_asset(spec: ModelSpec) -> Asset:
    return Asset(name=f"{spec.name}_predictions", uri=spec.asset_uri("predictions"), group="mlops-models")


def retrain_asset(spec: ModelSpec) -> Asset:
    """An event here asks for retraining; its extra says why (the monitor's alarm)."""
    return Asset(name=f"{spec.name}_retrain_requested", uri=spec.asset_uri("retrain-requested"),
                 group="mlops-models")
