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
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{SESSION_HOME / 'airflow' / 'airflow.db'}",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "plugins"), os.environ.get("PYTHONPATH")])),
    }
)
(SESSION_HOME / "airflow").mkdir(parents=True, exist_ok=True)


def pytest_sessionfinish(session, exitstatus):
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
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlops.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def airflow_db():
    """An initialised Airflow metadata DB (SQLite) for the session."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Path(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
