"""Test environment: every test session gets its own Airflow home, SQLite metadata DB, MLflow store and
data root under a temporary folder. Telemetry is off: the machines are offline.

Airflow reads its configuration when first imported, so the environment is set here, before any test
module imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import DATA_END, DATA_START, ROOT

SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlops-tests-"))

os.environ.update(
    {
        "MLOPS_PROJECT_ROOT": str(ROOT),
        "MLOPS_HOME": str(SESSION_HOME / "platform"),
        "AIRFLOW_HOME": str(SESSION_HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(SESSION_HOME / "airflow" / "plugins"),  # empty: the plugin is installed
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{SESSION_HOME / 'airflow' / 'airflow.db'}",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
)
(SESSION_HOME / "airflow").mkdir(parents=True, exist_ok=True)

# The session's Airflow deployment for tests marked `services`, in tests/services and tests/ui alike.
pytest_plugins = ["services_session", "browser_session"]


def pytest_sessionfinish(session, exitstatus):
    from mlops.tuning import runner

    # The sweeps' warm trial runners would otherwise wait out their idle time after the tests.
    runner.stop_all([SESSION_HOME / "platform" / "tuning" / "runners", runner.runner_folders(SESSION_HOME)[1]])
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_data_root() -> Path:
    """Clean example data for both datasets, shared read-only by the tests."""
    from mlops import synthetic

    root = SESSION_HOME / "sample-data"
    for dataset in synthetic.DATASETS:
        synthetic.generate(dataset, DATA_START, DATA_END, root)
    return root


@pytest.fixture
def platform(tmp_path, monkeypatch, sample_data_root):
    """A fresh MLflow store, audit log and lock folder for one test, over the shared sample data."""
    home = tmp_path / "platform"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_DATA_ROOT", str(sample_data_root))
    # tracking.client() exports MLFLOW_TRACKING_URI; set-then-delete makes monkeypatch remove it again at
    # teardown, so the next test in this worker (or a subprocess it starts) doesn't inherit this store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    from mlops.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def airflow_db():
    """An initialised Airflow metadata DB (SQLite) for the session."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Path(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))


FLEET_USERS = {"admin": ("admin", "admin-pw"), "alice": ("viewer", "alice-pw"), "bob": ("viewer", "bob-pw")}
FLEET_ACCESS = {"alice": ["churn__train", "churn__score", "churn__monitor"], "bob": ["demand__train"]}
FLEET_JWT_SECRET = "fleet-test-jwt-secret"


@pytest.fixture(scope="session")
def fleet_server(airflow_db, tmp_path_factory, sample_data_root):
    """churn trained and promoted once through its DAG (dag.test), then the real API server with the
    plugin over the same metadata DB and MLflow store. Users: admin sees everything; alice and bob only
    the DAGs FLEET_ACCESS gives them (a test auth manager that answers per DAG, as FAB or Keycloak do)."""
    import json
    from datetime import datetime, timezone

    from airflow.dag_processing.dagbag import DagBag

    from airflow_api_server import airflow_api_server
    from helpers import ROOT

    home = tmp_path_factory.mktemp("fleet") / "platform"
    saved = {k: os.environ.get(k) for k in ("MLOPS_HOME", "MLOPS_DATA_ROOT", "MLFLOW_TRACKING_URI")}
    os.environ.update({"MLOPS_HOME": str(home), "MLOPS_DATA_ROOT": str(sample_data_root)})
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        dr = DagBag(dag_folder=str(ROOT / "dags")).dags["churn__train"].test(
            logical_date=datetime(2026, 1, 15, tzinfo=timezone.utc))
        env = {"AIRFLOW__CORE__AUTH_MANAGER": "dag_rule_auth_manager.DagRuleAuthManager",
               "MLOPS_TEST_DAG_ACCESS": json.dumps(FLEET_ACCESS), "AIRFLOW__API_AUTH__JWT_SECRET": FLEET_JWT_SECRET,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
        with airflow_api_server(home.parent / "api", users=FLEET_USERS, env=env) as url:
            yield {"url": url, "run_id": dr.run_id, "users": FLEET_USERS, "home": home}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
