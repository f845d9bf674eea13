"""The monitoring check's HTML report, rendered by a real check (mlops.monitoring.run_check) against a real
MLflow store: demand's day_of_week, which the spec ignores, drifts in every daily batch (one weekday a day)
and must read "ignored", not "drifted", while keeping its statistics and staying out of the verdict."""

import html
import re
from datetime import date, datetime, timedelta, timezone

import pandas as pd

from helpers import load_example
from mlops import data, tracking
from mlops.drift.profile import build_profile, spec_kinds
from mlops.monitoring import run_check

WINDOW_LAST = date(2026, 1, 10)
CHECKED_DAY = date(2026, 1, 17)


def champion_with_profile(platform, spec) -> None:
    """A champion version whose run holds the reference profile of 28 days of training data, as training leaves it."""
    client = tracking.client(platform)
    days = [WINDOW_LAST - timedelta(days=i) for i in range(28)]
    frame = pd.concat([data._read(data.partition_uri(spec, platform.data_root, d), "parquet") for d in days])
    run = client.create_run(tracking.experiment_id(platform, spec.name),
                            tags={tracking.KIND: "train", tracking.MODEL: spec.name,
                                  tracking.WINDOW_LAST: WINDOW_LAST.isoformat()})
    client.log_dict(run.info.run_id, build_profile(frame, spec_kinds(spec)), tracking.REFERENCE_PROFILE)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(spec.name)
    version = client.create_model_version(spec.name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(spec.name, spec.promotion.alias, version.version)


def report_rows(html: str) -> dict[str, str]:
    """Each column's table row, by column name."""
    rows = re.findall(r"<tr><td><b>([^<]+)</b>(.*?)</tr>", html, flags=re.S)
    return {name: row for name, row in rows}


def test_an_ignored_column_that_drifted_reads_ignored_and_keeps_its_statistics(platform):
    spec = load_example("demand")
    assert spec.monitoring.columns["day_of_week"] == "ignore"
    champion_with_profile(platform, spec)

    record = run_check(spec, platform, datetime.combine(CHECKED_DAY + timedelta(days=1), datetime.min.time(),
                                                        tzinfo=timezone.utc), "manual__test")
    assert record["ignored_columns_drifted"] == ["day_of_week"]  # it really drifted...
    assert "day_of_week" not in record["drifted_columns"]       # ...and the verdict leaves it out
    assert "day_of_week" not in record["drift_verdict"]

    client = tracking.client(platform)
    path = client.download_artifacts(record["monitor_run_id"], f"checks/{CHECKED_DAY.isoformat()}/report.html")
    rows = report_rows(open(path).read())
    assert set(rows) == {"store", "price", "promo", "temperature", "day_of_week"}
    ignored = rows["day_of_week"]
    assert "ignored" in ignored and "drifted" not in ignored and "#b00020" not in ignored
    column = next(c for c in record["columns"] if c["column"] == "day_of_week")
    for name in ("psi", "ks_statistic", "wasserstein_normalised"):
        assert f"{name}: {column['statistics'][name]:.4g}" in ignored
    assert "not counted" in ignored and column["reasons"]  # why it would have counted, still shown
    assert all(html.escape(reason) in ignored for reason in column["reasons"])
    for name in set(rows) - {"day_of_week"}:  # the others say what they are
        column = next(c for c in record["columns"] if c["column"] == name)
        assert ("drifted" in rows[name]) == column["drifted"] and "ignored" not in rows[name]
