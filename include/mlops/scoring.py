"""Batch scoring: the champion, loaded by alias at run time, scores one daily partition.

A run for data interval ending D scores the partition of D - 1 (a run without an interval scores the
newest partition). The alias is resolved when the run starts, so a new champion is picked up by the
next run without a redeploy. Predictions are written next to the data (spec.scoring.output_uri) with the
row's position in the partition (to join the labels that arrive later), the model version that made them
and the run's data interval. A partition is written whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mlops.settings import Settings
from mlops.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd


class NoChampion(RuntimeError):
    """The model has no champion yet: there is nothing to score with."""


@dataclass(frozen=True)
class Champion:
    version: str
    uri: str
    run_id: str
    window_last_day: date | None


def champion_of(spec: ModelSpec, settings: Settings) -> Champion:
    from mlops import tracking

    version = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    if version is None:
        raise NoChampion(f"{spec.name} has no '{spec.promotion.alias}' yet: run {spec.dag_id} until a model is "
                         "promoted, then scoring starts")
    run_id = tracking.training_run_id(spec.name, version)
    run = tracking.client(settings).get_run(run_id)
    last = run.data.tags.get(tracking.WINDOW_LAST)
    return Champion(str(version.version), f"models:/{spec.name}/{version.version}", run_id,
                    date.fromisoformat(last) if last else None)


def partition_day(spec: ModelSpec, settings: Settings, data_interval_end: datetime | None) -> date:
    from mlops import data

    if data_interval_end is not None:
        return data_interval_end.astimezone(timezone.utc).date() - timedelta(days=1)
    newest = data.newest_partition_day(spec, settings.data_root)
    if newest is None:
        raise data.DataError(
            f"{spec.name}: no partition to score at {data.partition_uri(spec, settings.data_root, date.min)}"
        )
    return newest


def predictions_uri(spec: ModelSpec, settings: Settings, day: date) -> str:
    return spec.scoring.output_uri.format(data_root=settings.data_root.rstrip("/"), model=spec.name,
                                          date=day.isoformat())


def read_partition(spec: ModelSpec, settings: Settings, day: date) -> pd.DataFrame:
    from mlops import data

    uri = data.partition_uri(spec, settings.data_root, day)
    fs, path = data._filesystem(uri)
    if not fs.exists(path):
        raise data.DataError(f"{spec.name}: the partition of {day} is not there ({uri}); it may not have landed yet")
    return data._read(uri, spec.dataset.format)


def write_atomically(frame: pd.DataFrame, uri: str) -> None:
    """Local files go through a temporary name and a rename, so readers never see half a partition;
    object stores write whole objects anyway."""
    from mlops import storage

    storage.write_frame(frame, uri, "parquet")


def score_partition(spec: ModelSpec, settings: Settings, data_interval_start: datetime | None,
                    data_interval_end: datetime | None) -> dict[str, Any]:
    import mlflow
    import pandas as pd

    from mlops import tracking

    tracking.client(settings)
    champion = champion_of(spec, settings)
    day = partition_day(spec, settings, data_interval_end)
    frame = read_partition(spec, settings, day)
    features = list(spec.dataset.features)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        from mlops.data import DataError

        raise DataError(f"{spec.name}: the partition of {day} lacks feature column(s) {missing}")
    model = mlflow.pyfunc.load_model(champion.uri)
    scores = model.predict(frame[features])
    out = pd.DataFrame({
        "row": range(len(frame)),
        "prediction": pd.Series(scores, dtype="float64").to_numpy(),
        "model_version": champion.version,
        "model_uri": champion.uri,
        "partition_day": day.isoformat(),
        "data_interval_start": data_interval_start.isoformat() if data_interval_start else "",
        "data_interval_end": data_interval_end.isoformat() if data_interval_end else "",
    })
    uri = predictions_uri(spec, settings, day)
    write_atomically(out, uri)
    return {"model": spec.name, "partition_day": day.isoformat(), "rows": len(out), "model_version": champion.version,
            "model_uri": champion.uri, "predictions_uri": uri}
