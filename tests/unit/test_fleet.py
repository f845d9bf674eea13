"""The fleet summary (mlops.fleet) against a real MLflow SQLite store, audit log and reports folder, set up
the way the training, promotion, validation and monitoring steps leave them."""

import json
import os
import time

import pytest

from helpers import load_example
from mlops import fleet, tracking
from mlops.audit import AuditLog, AuditRecord
from mlops.monitoring import CHECK_TAG, KIND_MONITOR, VERSION_TAG


def _train_run(client, exp_id, metric, value, run_id_tag):
    run = client.create_run(exp_id, tags={tracking.KIND: "train", tracking.MODEL: "churn"})
    client.log_metric(run.info.run_id, metric, value)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _version(client, run_id, first, last, dag_run):
    mv = client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)
    for key, value in {tracking.WINDOW_FIRST: first, tracking.WINDOW_LAST: last,
                       tracking.INTERVAL_START: f"{first}T00:00:00+00:00", tracking.INTERVAL_END: "x",
                       tracking.FINGERPRINT: "f" * 32, tracking.DAG_ID: "churn__train",
                       tracking.RUN_ID: dag_run}.items():
        client.set_model_version_tag("churn", mv.version, key, value)
    return str(mv.version)


@pytest.fixture
def store(platform):
    """churn: v1 promoted, then v2 promoted (v1 previous champion), a monitor run with two checks, and two
    validation results on disk (the newer one failed)."""
    spec = load_example("churn")
    client = tracking.client(platform)
    exp_id = tracking.experiment_id(platform, "churn")
    client.create_registered_model("churn")
    r1 = _train_run(client, exp_id, "roc_auc", 0.71, "run-1")
    r2 = _train_run(client, exp_id, "roc_auc", 0.75, "run-2")
    v1 = _version(client, r1, "2025-12-20", "2026-01-09", "scheduled__2026-01-10")
    v2 = _version(client, r2, "2025-12-24", "2026-01-13", "scheduled__2026-01-14")
    audit = AuditLog(platform.audit_root, "churn")
    client.set_registered_model_alias("churn", "champion", v1)
    audit.append(AuditRecord("churn", "champion", None, v1, "promote", "airflow:churn__train/scheduled__2026-01-10",
                             "first champion"))
    client.set_registered_model_alias("churn", "previous-champion", v1)
    client.set_registered_model_alias("churn", "champion", v2)
    audit.append(AuditRecord("churn", "champion", v1, v2, "promote", "airflow:churn__train/scheduled__2026-01-14",
                             "roc_auc +0.04"))
    monitor = client.create_run(exp_id, tags={tracking.KIND: KIND_MONITOR, VERSION_TAG: v2})
    client.set_tag(monitor.info.run_id, f"{CHECK_TAG}2026-01-16", json.dumps({"bad": False, "alarmed": False}))
    client.set_tag(monitor.info.run_id, f"{CHECK_TAG}2026-01-17",
                   json.dumps({"bad": True, "alarmed": True, "reasons": ["'tenure_months' drifted"]}))
    reports = platform.reports_dir / "churn"
    for label, success in (("scheduled__2026-01-14T000000", True), ("manual__2026-01-15T000000", False)):
        (reports / label).mkdir(parents=True)
        summary = {"success": success, "evaluated": 21, "blocking_failures": [] if success else ["nulls:x"],
                   "warnings": []}
        (reports / label / "validation.json").write_text(json.dumps({"summary": summary}))
        time.sleep(0.02)
    old = reports / "scheduled__2026-01-14T000000" / "validation.json"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (reports / "data_docs").mkdir()
    (reports / "data_docs" / "index.html").write_text("<html>docs</html>")
    return spec, {"v1": v1, "v2": v2, "r1": r1, "r2": r2, "monitor": monitor.info.run_id}


def test_champion_previous_champion_audit_validation_and_drift(store, platform, monkeypatch):
    spec, ids = store
    status = fleet.model_status(platform, spec)
    ch, prev = status["champion"], status["previous_champion"]
    assert (ch["version"], prev["version"]) == (ids["v2"], ids["v1"])
    assert ch["value"] == pytest.approx(0.75) and prev["value"] == pytest.approx(0.71)
    assert (ch["window_first_day"], ch["window_last_day"]) == ("2025-12-24", "2026-01-13")
    assert ch["trained_by_run_id"] == "scheduled__2026-01-14"
    assert ch["promoted_by"] == "airflow:churn__train/scheduled__2026-01-14" and ch["promotion_action"] == "promote"
    assert prev["promoted_by"] == "airflow:churn__train/scheduled__2026-01-10"
    assert ch["mlflow_run_url"] == f"http://localhost:5000/#/runs/{ids['r2']}"
    assert ch["mlflow_version_url"] == f"http://localhost:5000/#/models/churn/versions/{ids['v2']}"
    assert status["last_audit"]["to_version"] == ids["v2"]

    val = status["last_validation"]
    assert val["label"] == "manual__2026-01-15T000000" and val["success"] is False
    assert val["blocking_failures"] == ["nulls:x"] and val["data_docs"] == "index.html"

    drift = status["last_drift"]
    assert (drift["day"], drift["status"], drift["champion_version"]) == ("2026-01-17", "alarm", ids["v2"])
    assert drift["reasons"] == ["'tenure_months' drifted"] and drift["monitor_run_id"] == ids["monitor"]
    assert status["dag_ids"] == {"train": "churn__train", "score": "churn__score", "monitor": "churn__monitor",
                                 "deploy": "churn__deploy"}
    # churn serves online, but nothing was deployed in this store and no supervisor runs
    serving = status["serving"]
    assert (serving["deployed"], serving["endpoint"], serving["ready"], serving["rollout"]) == ("-", "-", "0/1", None)


def test_fleet_page_shows_deployed_version_endpoint_replicas_and_last_rollout():
    from mlops_airflow.fleet.render import _rollout, _serving

    serving = {"deployed": "v3", "champion": "v4", "endpoint": "http://127.0.0.1:4100", "replicas": 2,
               "replicas_ready": 2, "ready": "2/2", "deployed_version_url": "http://mlflow/#/models/churn/versions/3"}
    cell = _serving({"serving": serving})
    assert "v3</a>" in cell and "champion is v4" in cell and "http://127.0.0.1:4100" in cell and "2/2 ready" in cell
    assert "batch only" in _serving({"serving": None})
    rollout = {"started": "2026-12-02T10:00:00.000+00:00", "from_version": "2", "to_version": "3",
               "verdict": "rolled_back", "failure": {"step": "bake", "reason": "p99 latency 410 ms > max 150 ms"},
               "bake": {"requests": 3, "error_rate": 0.0, "p99_ms": 410.2, "psi": None, "disagreement": None}}
    cell = _rollout(rollout)
    assert "v2 &rarr; v3" in cell and "rolled back" in cell and "at bake: p99 latency 410 ms" in cell
    assert "bake 3 req" in cell and "p99 410 ms" in cell


def test_fleet_lists_every_spec_and_filters_by_name(store, platform):
    everything = fleet.fleet_status(platform)
    names = [m["model"] for m in everything]
    assert names == sorted(names) and {"churn", "demand"} <= set(names)
    demand = next(m for m in everything if m["model"] == "demand")
    assert demand["champion"] is None and demand["last_drift"] is None and demand["error"] is None
    assert [m["model"] for m in fleet.fleet_status(platform, {"churn"})] == ["churn"]
    assert fleet.fleet_status(platform, set()) == []


def test_a_broken_spec_is_listed_with_its_problems(platform, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "oops.yaml").write_text("apiVersion: mlops.airflow/v1\nname: oops\n")
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    from mlops.settings import get_settings

    (row,) = fleet.fleet_status(get_settings())
    assert row["model"] == "oops" and row["dag_ids"]["train"] == "oops__train" and "oops.yaml" in row["error"]


def test_mlflow_ui_url_setting(monkeypatch):
    from mlops.settings import get_settings

    monkeypatch.delenv("MLOPS_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/x.db")
    assert get_settings().mlflow_ui_url == "http://localhost:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com/")
    assert get_settings().mlflow_ui_url == "https://mlflow.example.com"
    monkeypatch.setenv("MLOPS_MLFLOW_UI_URL", "https://ui.example.com/mlflow/")
    settings = get_settings()
    assert settings.mlflow_ui_url == "https://ui.example.com/mlflow"
    assert fleet.mlflow_run_url(settings, "abc") == "https://ui.example.com/mlflow/#/runs/abc"
    assert fleet.mlflow_model_version_url(settings, "churn", 3) == "https://ui.example.com/mlflow/#/models/churn/versions/3"
    assert fleet.mlflow_run_url(settings, None) == "" and fleet.mlflow_model_version_url(settings, "churn", None) == ""


def test_data_docs_relative_stays_inside_the_site(platform):
    base = fleet.data_docs_dir(platform, "churn")
    assert fleet.data_docs_relative(platform, "churn", base / "validations" / "a.html") == "validations/a.html"
    assert fleet.data_docs_relative(platform, "churn", base / ".." / "secret.json") is None
    assert fleet.data_docs_relative(platform, "churn", "/etc/passwd") is None


def test_a_drift_check_of_an_earlier_champion_says_so():
    from mlops_airflow.fleet.render import _drift

    alarm = {"status": "alarm", "day": "2026-01-18", "champion_version": "1", "mlflow_run_url": None}
    assert "champion is v3 now" in _drift(alarm, {"version": "3"})
    assert "now" not in _drift(alarm, {"version": "1"}) and "ALARM" in _drift(alarm, None)


def test_data_docs_pages_are_served_without_scripts_or_other_sites():
    from mlops_airflow.fleet.data_docs import STYLE, offline_page

    page = ("<html><head><link rel=stylesheet href='https://cdn.example/b.css'><script src=//cdn.example/j.js>"
            "</script><style>.logo{background:url('https://cdn.example/l.png')}</style></head><body>"
            "<img src=\"https://cdn.example/logo.png\" alt=logo><p>store: 5 unexpected values</p>"
            "<scr<script>x</script>ipt>window.pwned=1</scr<script></script>ipt><script>inline()</script>"
            "<a href='https://greatexpectations.io'>GX</a></body></html>")
    out = offline_page(page)
    assert "<script" not in out.lower() and "cdn.example" not in out, out
    assert "<p>store: 5 unexpected values</p>" in out and "https://greatexpectations.io" in out  # a link stays
    assert out.index(STYLE) < out.index("</head>")


def test_data_docs_paths_too_long_for_the_filesystem_are_not_files(tmp_path):
    from mlops_airflow.fleet.app import _shown, _site_file

    (tmp_path / "validations").mkdir()
    (tmp_path / "validations" / "a.html").write_text("x")
    assert _site_file(tmp_path, "validations/a.html") == tmp_path / "validations" / "a.html"
    for relative in ("a" * 300, "validations/" + "b" * 256 + ".html", "c/" * 3000 + "x", "validations",
                     "../" + tmp_path.name + "/validations/a.html/..", "é" * 200):
        assert _site_file(tmp_path, relative) is None, relative[:40]
    assert _shown("churn") == "'churn'"
    shown = _shown("n" * 20_000)
    assert len(shown) < 100 and "20000 characters" in shown
