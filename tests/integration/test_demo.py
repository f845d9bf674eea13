"""The README's main job, as a user runs it: the demo twice on a fresh store. The second run must
train nothing, create no model version and write no audit record."""

import os
import re
import subprocess
import sys

from helpers import MODELS, ROOT

NAMES = sorted(p.stem for p in MODELS.glob("*.yaml"))  # churn, demand, demand_nn (PyTorch)


def run_demo(env):
    out = subprocess.run([sys.executable, "-m", "mlops_airflow.demo"], env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def champions(stdout):
    table = stdout.split("Champions:", 1)[1]
    return {m.group(1): m.group(0).split() for m in re.finditer(rf"^({'|'.join(NAMES)})\s+v\d+.*$", table, re.M)}


def model_versions(home):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    return {name: sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            for name in NAMES}


def test_demo_twice_second_run_is_all_cache_hits(tmp_path, airflow_db):
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}
    env.pop("MLOPS_DATA_ROOT", None)
    first = run_demo(env)
    for dag_id in (f"{name}__train" for name in NAMES):
        for day in ("2026-01-14", "2026-01-15"):
            assert f"{dag_id} {day}: success" in first
    rows = champions(first)
    assert set(rows) == set(NAMES)
    model, version, metric, value, interval, fingerprint, run_id = rows["churn"]
    assert metric == "roc_auc" and float(value) > 0.6 and len(fingerprint) == 32 and len(run_id) == 32
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d", interval)
    assert first.count("trained: models:/") == 2 * len(NAMES)
    audit_files = sorted(p.name for p in (tmp_path / "home" / "audit").rglob("*.json"))
    versions_before = model_versions(tmp_path / "home")
    assert versions_before == {name: ["1", "2"] for name in NAMES}

    second = run_demo(env)
    assert champions(second) == rows
    assert second.count("cache hit, reused") == 2 * len(NAMES) and "trained: models:/" not in second
    assert model_versions(tmp_path / "home") == versions_before
    assert sorted(p.name for p in (tmp_path / "home" / "audit").rglob("*.json")) == audit_files
