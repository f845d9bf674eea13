"""Scoring and monitoring end to end through dag.test() with a real MLflow store: the champion scores
each day, the monitor checks each day against the champion's stored profile, stays quiet while the data
is stable (and while the new champion cools down), and asks for retraining through the Asset the training
DAG is scheduled on once the drift persists."""

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from helpers import ROOT
from k8s_e2e import task_instances
from mlops import synthetic, tracking

DRIFT_FROM = date(2026, 1, 22)


@pytest.fixture
def drifting_data(tmp_path, monkeypatch, platform):
    root = tmp_path / "data"
    synthetic.generate("churn", date(2025, 12, 1), date(2026, 1, 25), root, drift_from=DRIFT_FROM)
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(root))
    return root


def dags():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags


def asset_events(uri: str) -> list:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as s:
        return [(e.extra, e.source_run_id)
                for e in s.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.uri == uri).order_by(AssetEvent.id)]


def queued_runs(dag_id: str) -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as s:
        return s.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == dag_id).count()


def unpause(dag_id: str) -> None:
    """As a user does in the UI: paused DAGs get no runs from asset events."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as s:
        s.query(DagModel).filter(DagModel.dag_id == dag_id).update({DagModel.is_paused: False})


def at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)


def test_scores_daily_and_asks_for_retraining_only_when_drift_persists(drifting_data, platform, airflow_db):
    bag = dags()
    assert bag["churn__train"].test(logical_date=at(date(2026, 1, 15))).state == "success"
    champion = tracking.version_by_alias(platform, "churn", "champion")
    unpause("churn__train")
    predictions_before = len(asset_events("mlops://models/churn/predictions"))
    retrain_before = len(asset_events("mlops://models/churn/retrain-requested"))

    fired = {}
    for offset in range(9):  # checks of Jan 15 .. Jan 23 (runs of Jan 16 .. Jan 24)
        run_day = date(2026, 1, 16) + timedelta(days=offset)
        score = bag["churn__score"].test(logical_date=at(run_day))
        assert task_instances("churn__score", score.run_id)["score"][0] == "success"
        monitor = bag["churn__monitor"].test(logical_date=at(run_day))
        tis = task_instances("churn__monitor", monitor.run_id)
        assert tis["validate_batch"][0] == "success" and tis["check"][0] == "success", tis
        fired[run_day - timedelta(days=1)] = tis["request_retraining"][0] == "success"

    # Quiet while cooling down (Jan 15-17) and while stable (Jan 18-21); the second drifted day fires.
    assert [d for d, f in fired.items() if f] == [date(2026, 1, 23)]
    events = asset_events("mlops://models/churn/retrain-requested")[retrain_before:]
    assert len(events) == 1
    extra, _ = events[0]
    assert extra["day"] == "2026-01-23" and extra["champion_version"] == str(champion.version)
    assert any("critical column(s) drifted" in r for r in extra["reasons"])
    assert queued_runs("churn__train") >= 1  # the scheduler would start the training DAG from this

    # Predictions: one file per day, by the champion, joinable with the labels by row.
    assert len(asset_events("mlops://models/churn/predictions")) - predictions_before == 9
    preds = pd.read_parquet(drifting_data / "predictions" / "churn" / "date=2026-01-15" / "part-0.parquet")
    assert len(preds) == 400 and set(preds["model_version"]) == {str(champion.version)}
    assert preds["prediction"].between(0, 1).all() and list(preds["row"]) == list(range(400))

    # Metrics over time and a report per check on the champion's monitoring run.
    client = tracking.client(platform)
    (run,) = client.search_runs([tracking.experiment_id(platform, "churn")],
                                filter_string=f"tags.`{tracking.KIND}` = 'monitor'")
    history = client.get_metric_history(run.info.run_id, "drift.monthly_charges.psi")
    assert len(history) == 9 and max(h.value for h in history) > 0.2
    quality = client.get_metric_history(run.info.run_id, "quality.roc_auc")
    assert len(quality) == 8 and all(0.5 < q.value < 1 for q in quality)  # labels lag a day
    report = client.download_artifacts(run.info.run_id, "checks/2026-01-23/report.html")
    text = open(report).read()
    assert "ALARM: retraining requested" in text and "<svg" in text and "monthly_charges" in text

    # A new champion is picked up by the next scoring run, with no redeploy: move the alias, run again.
    source = client.get_model_version("churn", champion.version)
    newer = client.create_model_version("churn", source.source, run_id=source.run_id)
    client.set_registered_model_alias("churn", "champion", newer.version)
    rescored = bag["churn__score"].test(logical_date=at(date(2026, 1, 25)))
    assert task_instances("churn__score", rescored.run_id)["score"][0] == "success"
    preds = pd.read_parquet(drifting_data / "predictions" / "churn" / "date=2026-01-24" / "part-0.parquet")
    assert set(preds["model_version"]) == {str(newer.version)}
