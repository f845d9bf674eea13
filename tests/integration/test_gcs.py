"""Data and artifacts on GCS: the data lake, MLflow's artifact store and the audit log are gs:// buckets, served
by a GCS emulator on loopback (gcp-storage-emulator, in memory; gcsfs and google-cloud-storage both talk to it
through STORAGE_EMULATOR_HOST). Synthetic data goes into a bucket, the training DAG validates and trains from
it (the local trainer subprocess included), the model lands in the artifact bucket and loads back from there,
the audit record is an object, and scoring and monitoring read and write the bucket too. Nothing is written to
the local artifact folder or a local data root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest

from helpers import ROOT, load_example
from k8s_e2e import task_instances
from mlops import synthetic, tracking

DATA, ARTIFACTS, AUDIT = "mlops-data", "mlops-artifacts", "mlops-audit"
DATA_ROOT = f"gs://{DATA}/lake"
ARTIFACT_ROOT = f"gs://{ARTIFACTS}/mlflow"
AUDIT_ROOT = f"gs://{AUDIT}/audit"


def at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gcs(monkeypatch):
    """An in-memory GCS emulator with the three buckets; a google-cloud-storage client on it."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        # gcsfs would ask Google's control plane (not emulated) for each bucket's layout first.
        monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        from google.cloud import storage

        client = storage.Client(project="mlops-test")  # anonymous: the emulator has no auth
        for bucket in (DATA, ARTIFACTS, AUDIT):
            client.create_bucket(bucket)
        yield client
    finally:
        server.stop()


def objects(client, bucket: str, prefix: str = "") -> list[str]:
    return sorted(b.name for b in client.list_blobs(bucket, prefix=prefix))


@pytest.fixture
def on_gcs(gcs, platform, monkeypatch):
    """The platform's data, artifacts and audit log in the buckets; the tracking store stays local SQLite."""
    monkeypatch.setenv("MLOPS_DATA_ROOT", DATA_ROOT)
    monkeypatch.setenv("MLOPS_ARTIFACT_ROOT", ARTIFACT_ROOT)
    monkeypatch.setenv("MLOPS_AUDIT_ROOT", AUDIT_ROOT)
    from mlops.settings import get_settings

    settings = get_settings()
    assert (settings.data_root, settings.artifact_root, settings.audit_root) == (DATA_ROOT, ARTIFACT_ROOT, AUDIT_ROOT)
    return settings


def test_synthetic_cli_writes_to_a_bucket(gcs):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "mlops.synthetic", "--dataset", "demand", "--start", "2026-01-01",
                          "--end", "2026-01-02", "--out", f"gs://{DATA}/cli"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"under gs://{DATA}/cli/demand" in out.stdout
    assert objects(gcs, DATA, "cli/") == [
        f"cli/{ds}/date={d}/part-0.parquet" for ds in ("demand", "demand_labels") for d in ("2026-01-01", "2026-01-02")]

    # The drift CLI reads objects as it reads files.
    from mlops.drift.cli import main as drift

    day = f"gs://{DATA}/cli/demand/date=2026-01-0{{}}/part-0.parquet"
    assert drift(["--reference", day.format(1), "--current", day.format(2), "--format", "json"]) == 0
    assert drift(["--reference", day.format(1), "--current", day.format(3)]) == 2  # no such object


def test_train_score_and_monitor_on_gcs(on_gcs, gcs, airflow_db, sample_data_root):
    import mlflow
    import pandas as pd
    from airflow.dag_processing.dagbag import DagBag

    from mlops import data
    from mlops.audit import AuditLog

    settings = on_gcs
    written = synthetic.generate("churn", date(2025, 12, 15), date(2026, 1, 16), DATA_ROOT)
    assert written[0] == f"{DATA_ROOT}/churn/date=2025-12-15/part-0.parquet"
    assert len(objects(gcs, DATA, "lake/churn/")) == 33 and len(objects(gcs, DATA, "lake/churn_labels/")) == 33

    spec = load_example("churn")
    assert data.newest_partition_day(spec, DATA_ROOT) == date(2026, 1, 16)  # runs without a data interval
    # A partition landed by another process is seen at once (no stale listing in a long-lived worker that
    # checks again for a late partition).
    to_17 = data.WindowRange.ending(date(2026, 1, 17), spec.dataset.window.days, "data_interval")
    assert data.load_window(spec, DATA_ROOT, to_17).profile["exists"].tolist()[-2:] == [True, False]
    late = gcs.bucket(DATA).blob("lake/churn/date=2026-01-17/part-0.parquet")
    late.upload_from_string(gcs.bucket(DATA).blob("lake/churn/date=2026-01-16/part-0.parquet").download_as_bytes())
    assert data.load_window(spec, DATA_ROOT, to_17).profile["exists"].tolist()[-2:] == [True, True]
    assert data.newest_partition_day(spec, DATA_ROOT) == date(2026, 1, 17)
    late.delete()
    assert data.newest_partition_day(spec, DATA_ROOT) == date(2026, 1, 16)

    bag = DagBag(dag_folder=str(ROOT / "dags")).dags
    dr = bag["churn__train"].test(logical_date=at(date(2026, 1, 15)))
    states = {t: s[0] for t, s in task_instances("churn__train", dr.run_id).items()}
    assert states == {"check_request": "success", "validate_data": "success", "train": "success",
                      "evaluate": "success", "promote": "success"}, states

    # Validated and trained from the bucket: the window's objects, with the content the same days have on disk.
    client = tracking.client(settings)
    champion = client.get_model_version_by_alias("churn", "champion")
    assert (champion.tags[tracking.WINDOW_FIRST], champion.tags[tracking.WINDOW_LAST]) == ("2025-12-25", "2026-01-14")
    window = data.WindowRange.ending(date(2026, 1, 14), spec.dataset.window.days, "data_interval")
    from_disk = data.load_window(spec, str(sample_data_root), window).frame[spec.dataset.columns]
    assert champion.tags[tracking.FINGERPRINT] == data.fingerprint(from_disk)
    run = client.get_run(champion.run_id)
    sources = {i.tags[0].value: i.dataset.source for i in run.inputs.dataset_inputs}
    assert f"{DATA_ROOT}/churn/date={{2025-12-25..2026-01-14}}/part-0.parquet" in sources["training"]

    # The experiment's artifacts live in the artifact bucket, and the model loads back from there.
    experiment = client.get_experiment(tracking.experiment_id(settings, "churn"))
    assert experiment.artifact_location == f"{ARTIFACT_ROOT}/churn"
    assert run.info.artifact_uri.startswith(f"{ARTIFACT_ROOT}/churn/")
    stored = objects(gcs, ARTIFACTS, "mlflow/churn/")
    assert any(name.endswith("/MLmodel") for name in stored), stored
    assert any(name.endswith(f"/artifacts/{tracking.REFERENCE_PROFILE}") for name in stored), stored
    assert any(name.endswith("/artifacts/validation/validation.json") for name in stored), stored
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    scores = model.predict(from_disk[list(spec.dataset.features)].head(20))
    assert len(scores) == 20 and all(0 <= s <= 1 for s in scores)

    # The audit record is an object in the audit bucket.
    (record,) = AuditLog(AUDIT_ROOT, "churn").records()
    assert (record.action, record.from_version, record.to_version) == ("promote", None, str(champion.version))
    (audit_object,) = objects(gcs, AUDIT, "audit/churn/")
    assert audit_object.endswith(f"-{record.id}.json")
    # A record another process appends is read at once (the fleet page reads what workers write).
    other = gcs.bucket(AUDIT).blob(audit_object.replace(record.id, "fromelsewhere"))
    other.upload_from_string(gcs.bucket(AUDIT).blob(audit_object).download_as_bytes())
    assert len(AuditLog(AUDIT_ROOT, "churn").records()) == 2
    other.delete()

    # Scoring writes the predictions next to the data, in the bucket; monitoring reads them with the labels.
    for run_day in (date(2026, 1, 16), date(2026, 1, 17)):
        score = bag["churn__score"].test(logical_date=at(run_day))
        assert task_instances("churn__score", score.run_id)["score"][0] == "success"
    predictions = f"{DATA_ROOT}/predictions/churn/date=2026-01-15/part-0.parquet"
    assert "lake/predictions/churn/date=2026-01-15/part-0.parquet" in objects(gcs, DATA, "lake/predictions/")
    preds = data._read(predictions, "parquet")
    assert len(preds) == 400 and set(preds["model_version"]) == {str(champion.version)}
    assert isinstance(preds, pd.DataFrame) and preds["prediction"].between(0, 1).all()

    monitor = bag["churn__monitor"].test(logical_date=at(date(2026, 1, 17)))
    tis = task_instances("churn__monitor", monitor.run_id)
    assert tis["validate_batch"][0] == "success" and tis["check"][0] == "success", tis
    (monitor_run,) = client.search_runs([experiment.experiment_id], f"tags.`{tracking.KIND}` = 'monitor'")
    quality = client.get_metric_history(monitor_run.info.run_id, "quality.roc_auc")
    assert len(quality) == 1 and 0.5 < quality[0].value < 1  # Jan 15's predictions joined with its labels
    assert any(name.endswith("/checks/2026-01-16/check.json") for name in objects(gcs, ARTIFACTS, "mlflow/churn/"))

    # Nothing went to the local defaults.
    local_artifacts = settings.home / "mlflow" / "artifacts"
    assert not local_artifacts.exists() or not any(local_artifacts.iterdir())
    assert not (settings.home / "data").exists()
    assert not (settings.home / "audit").exists()
