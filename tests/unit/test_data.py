from datetime import date, datetime, timezone

import pandas as pd
import pytest

from helpers import load_example
from mlops import data, synthetic


def test_fingerprint_reads_every_row_unlike_mlflow_digest():
    import mlflow.data

    df = synthetic.generate_partition("churn", date(2026, 1, 1), rows=20000)
    changed = df.copy()
    changed.loc[changed.index[-1], "monthly_charges"] += 0.01
    assert data.fingerprint(df) == data.fingerprint(df.copy())
    assert data.fingerprint(df) != data.fingerprint(changed)
    # MLflow's own digest samples the first rows, so it misses the change: the reason for our own.
    assert mlflow.data.from_pandas(df).digest == mlflow.data.from_pandas(changed).digest


def test_fingerprint_sees_types_and_column_names():
    df = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]})
    assert data.fingerprint(df) != data.fingerprint(df.astype({"a": "float64"}))
    assert data.fingerprint(df) != data.fingerprint(df.rename(columns={"a": "c"}))


def test_window_ends_before_the_data_interval_end(tmp_path):
    spec = load_example("churn")
    w = data.resolve_window(spec, str(tmp_path), datetime(2026, 1, 15, 3, tzinfo=timezone.utc))
    assert (w.first_day, w.last_day, w.anchored_by) == (date(2025, 12, 25), date(2026, 1, 14), "data_interval")
    assert len(w.days) == spec.dataset.window.days


def test_window_without_interval_ends_at_newest_partition(tmp_path):
    spec = load_example("churn")
    synthetic.generate("churn", date(2026, 1, 1), date(2026, 1, 9), tmp_path, rows=60)
    w = data.resolve_window(spec, str(tmp_path), None)
    assert w.last_day == date(2026, 1, 9) and w.anchored_by == "newest_partition"


def test_no_partition_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="no partition found"):
        data.resolve_window(load_example("churn"), str(tmp_path), None)


def test_missing_partitions_are_recorded_not_dropped(tmp_path):
    spec = load_example("churn")
    synthetic.generate("churn", date(2026, 1, 1), date(2026, 1, 21), tmp_path, rows=60)
    (tmp_path / "churn" / "date=2026-01-05" / "part-0.parquet").unlink()
    w = data.resolve_window(spec, str(tmp_path), datetime(2026, 1, 22, tzinfo=timezone.utc))
    loaded = data.load_window(spec, str(tmp_path), w)
    missing = loaded.profile[~loaded.profile["exists"]]
    assert missing["day"].tolist() == ["2026-01-05"]
    assert len(loaded.frame) == 60 * 20


def test_time_holdout_is_the_last_days(tmp_path):
    spec = load_example("churn")  # 21 days, fraction 0.2 -> 5 days
    synthetic.generate("churn", date(2026, 1, 1), date(2026, 1, 21), tmp_path, rows=60)
    w = data.resolve_window(spec, str(tmp_path), datetime(2026, 1, 22, tzinfo=timezone.utc))
    split = data.split_holdout(spec, data.load_window(spec, str(tmp_path), w))
    assert split.holdout_days == ["2026-01-17", "2026-01-18", "2026-01-19", "2026-01-20", "2026-01-21"]
    assert len(split.holdout) == 5 * 60 and len(split.train) == 16 * 60


def test_synthetic_data_is_deterministic_and_drift_moves_it():
    day = date(2026, 1, 3)
    a = synthetic.generate_partition("demand", day)
    b = synthetic.generate_partition("demand", day)
    pd.testing.assert_frame_equal(a, b)
    assert data.fingerprint(a) != data.fingerprint(synthetic.generate_partition("demand", day, seed=8))
    drifted = synthetic.generate_partition("demand", day, drift_from=date(2026, 1, 1))
    assert drifted["temperature"].mean() > a["temperature"].mean() + 8


@pytest.mark.parametrize("kind", synthetic.BAD_KINDS)
def test_each_bad_kind_damages_the_partition(kind):
    good = synthetic.generate_partition("churn", date(2026, 1, 3))
    bad = synthetic.generate_partition("churn", date(2026, 1, 3), bad=kind)
    checks = {
        "nulls": lambda: bad["monthly_charges"].isna().sum() > 0,
        "out_of_range": lambda: (bad["monthly_charges"] < 0).any(),
        "dropped_column": lambda: "monthly_charges" not in bad.columns,
        "renamed_column": lambda: "monthly_charges_v2" in bad.columns and "monthly_charges" not in bad.columns,
        "wrong_type": lambda: bad["monthly_charges"].map(type).eq(str).all(),
        "empty_partition": lambda: len(bad) == 0 and list(bad.columns) == list(good.columns),
    }
    assert checks[kind]()


def test_generator_cli(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mlops.synthetic", "--dataset", "demand", "--start", "2026-01-01",
                          "--end", "2026-01-03", "--out", str(tmp_path), "--bad", "nulls"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--bad needs --bad-date" in out.stderr
    out = subprocess.run([sys.executable, "-m", "mlops.synthetic", "--dataset", "demand", "--start", "2026-01-01",
                          "--end", "2026-01-03", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert sorted(p.parent.name for p in (tmp_path / "demand").glob("*/part-0.parquet")) == [
        "date=2026-01-01", "date=2026-01-02", "date=2026-01-03"]
