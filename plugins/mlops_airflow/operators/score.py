from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.spec import ModelSpec
from mlops_airflow.hooks.mlflow import with_mlflow_connection
from mlops_airflow.lineage import LineageMixin


class ScoreOperator(LineageMixin, BaseOperator):
    """The champion (resolved by alias now) scores the run's partition; predictions are written next to
    the data, and the predictions Asset event carries where and by which version. Skipped while the model
    has no champion."""

    ui_color = "#f3ecff"

    def __init__(self, *, spec: ModelSpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    @with_mlflow_connection
    def execute(self, context):
        from mlops.data import DataError
        from mlops.scoring import NoChampion, score_partition
        from mlops.settings import get_settings
        from mlops_airflow.assets import predictions_asset
        from mlops_airflow.runtime import data_interval_end

        end = data_interval_end(context)
        start = context.get("data_interval_start") if end is not None else None  # newest-data runs: no interval
        try:
            result = score_partition(self.spec, get_settings(), start, end)
        except NoChampion as exc:
            raise AirflowSkipException(str(exc)) from None
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("v%s scored %d rows of %s -> %s", result["model_version"], result["rows"],
                      result["partition_day"], result["predictions_uri"])
        context["outlet_events"][predictions_asset(self.spec)].extra = result
        from datetime import date

        from mlops.data import partition_uri

        day = date.fromisoformat(str(result["partition_day"]))
        self.note_lineage(reads=[partition_uri(self.spec, get_settings().data_root, day)],
                          model_version=result["model_version"], writes=[result["predictions_uri"]],
                          facts={"rows": result["rows"], "partition_day": str(day)})
        return result
