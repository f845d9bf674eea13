"""What tasks read from the Airflow context: a retraining request trains on the newest data."""

from datetime import datetime, timezone
from types import SimpleNamespace

from mlops_airflow.runtime import data_interval_end

END = datetime(2026, 1, 15, tzinfo=timezone.utc)


def test_asset_triggered_runs_take_the_newest_data_others_their_interval():
    assert data_interval_end({"dag_run": SimpleNamespace(run_type="asset_triggered"), "data_interval_end": END}) is None
    assert data_interval_end({"dag_run": SimpleNamespace(run_type="scheduled"), "data_interval_end": END}) == END
    assert data_interval_end({"data_interval_end": None}) is None
