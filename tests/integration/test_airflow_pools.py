"""The catalogue's Airflow pools are created, then updated, in the real metadata DB."""

import os
import subprocess
import sys


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mlops_airflow.pools", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)


def test_sync_creates_then_leaves_pools_alone(airflow_db):
    from airflow.models.pool import Pool

    first = cli("sync")
    assert first.returncode == 0, first.stderr[-2000:]
    pool = Pool.get_pool("mlops-gpu-l4")
    assert pool is not None and pool.slots == 8 and pool.include_deferred is True
    assert "l4, l4-spot" in pool.description
    assert Pool.get_pool("mlops-cpu").slots == 32
    promotions = {m: Pool.get_pool(f"mlops-promotion-{m}") for m in ("churn", "demand", "demand_nn")}
    assert {m: (p.slots, p.include_deferred) for m, p in promotions.items()} == dict.fromkeys(promotions, (1, True))
    second = cli("sync")
    assert second.returncode == 0 and "already match" in second.stdout

    Pool.create_or_update_pool("mlops-gpu-h100", 1, "shrunk by hand", include_deferred=False)
    dry = cli("sync", "--dry-run")
    assert "update mlops-gpu-h100: 8 slots" in dry.stdout and Pool.get_pool("mlops-gpu-h100").slots == 1
    cli("sync")
    assert Pool.get_pool("mlops-gpu-h100").slots == 8

    # Two slots would let a promotion and a rollback of one model run at once: sync puts it back to one.
    Pool.create_or_update_pool("mlops-promotion-churn", 2, "widened by hand", include_deferred=True)
    assert "update mlops-promotion-churn: 1 slots" in cli("sync").stdout
    assert Pool.get_pool("mlops-promotion-churn").slots == 1


def test_sync_names_a_missing_models_folder(airflow_db, tmp_path):
    out = subprocess.run([sys.executable, "-m", "mlops_airflow.pools", "sync", "--dry-run"], capture_output=True,
                         text=True, env={**os.environ, "MLOPS_MODELS_DIR": str(tmp_path / "nowhere")}, timeout=120)
    assert out.returncode == 2 and f"the models folder {tmp_path / 'nowhere'} does not exist" in out.stderr
    assert "MLOPS_MODELS_DIR" in out.stderr
