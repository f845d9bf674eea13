"""Local training of a GPU model takes its GPUs from the Airflow pool of its catalogue pool, one slot per GPU,
as the pod would on a cluster: a workstation's (or a Celery worker's) GPUs are a quota too. CPU-only local
training stays in default_pool, so a laptop whose pools were never synced still trains."""

from __future__ import annotations

import yaml

from helpers import MODELS, ROOT

CATALOGUE = {
    "apiVersion": "mlops.airflow/v1",
    "pools": {
        "cpu": {"description": "CPU nodes", "cpu": "2", "memory": "8Gi", "airflow_pool": "mlops-cpu",
                "airflow_pool_slots": 32},
        "gpu": {"description": "two GPUs", "gpu_resource": "nvidia.com/gpu", "gpus_per_node": 2, "cpu": "4",
                "memory": "16Gi", "airflow_pool": "mlops-gpu-test", "airflow_pool_slots": 2},
    },
}


def _bag(tmp_path, monkeypatch, specs: dict[str, dict]):
    from airflow.dag_processing.dagbag import DagBag

    compute, models = tmp_path / "compute", tmp_path / "models"
    compute.mkdir()
    models.mkdir()
    (compute / "pools.yaml").write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    for name, changes in specs.items():
        spec = yaml.safe_load((MODELS / "churn.yaml").read_text())
        spec["name"] = name
        spec["compute"].update(changes)
        (models / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("MLOPS_COMPUTE_DIR", str(compute))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    monkeypatch.delenv("MLOPS_COMPUTE_BACKEND", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


def test_local_gpu_training_takes_its_pools_slots(tmp_path, monkeypatch):
    bag = _bag(tmp_path, monkeypatch, {
        "one_gpu": {"backend": "local", "pool": "gpu", "gpus": 1},
        "two_gpus": {"backend": "local", "pool": "gpu", "gpus": 2},
        "cpu_only": {"backend": "local", "pool": "cpu", "gpus": 0},
    })
    one, two, cpu = (bag.dags[f"{m}__train"].get_task("train") for m in ("one_gpu", "two_gpus", "cpu_only"))
    assert (one.pool, one.pool_slots) == ("mlops-gpu-test", 1)
    assert (two.pool, two.pool_slots) == ("mlops-gpu-test", 2)
    assert (cpu.pool, cpu.pool_slots) == ("default_pool", 1)
    # The other steps are not GPU work (promote takes the model's promotion pool: mlops.locks).
    for task in bag.dags["one_gpu__train"].tasks:
        if task.task_id != "train":
            assert task.pool in ("default_pool", "mlops-promotion-one_gpu"), task.task_id


def test_example_gpu_model_trains_locally_in_its_gpu_pool(monkeypatch):
    """demand_nn (local backend, pool l4, 1 GPU) against the real catalogue."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("MLOPS_COMPUTE_BACKEND", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    train = bag.dags["demand_nn__train"].get_task("train")
    assert (train.pool, train.pool_slots) == ("mlops-gpu-l4", 1)
    assert bag.dags["churn__train"].get_task("train").pool == "default_pool"
