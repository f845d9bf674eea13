"""Airflow's distributed executor: the scheduler with the CeleryExecutor, Redis as the broker, PostgreSQL as
metadata DB and Celery result backend, and two Celery workers (2 processes each: 4 worker slots), train
GPU models whose catalogue pool's Airflow pool has 2 slots.

Four models (copies of the churn example, 1 GPU each, local backend: the trainer is a subprocess of the
Celery worker) share the test catalogue's GPU pool; one run of each is triggered at once, so 4 GPU train
tasks compete for 2 slots while 4 worker slots are free. From the train task instances' start and end
dates, the number of GPU tasks running at once never exceeds 2 and does reach 2 (the cap is what held
the others back, not a lack of parallelism); every run succeeds, and both workers ran tasks.

This deployment is its own (not the session's LocalExecutor one): its own database, Redis database and
Celery queue, all removed afterwards. Without PostgreSQL or Redis the test skips with the reason, except
under CI=true, where it fails.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from airflow_deployment import (REPORT, create_database, database_exists, drop_database, free_port, postgres_problem,
                                require)
from celery_deployment import CeleryDeployment, flush_redis_db, redis_problem, take_redis_db
from helpers import MODELS
from waiting import wait_for_run

pytestmark = pytest.mark.services

GPU_SLOTS = 2
MODELS_ON_GPU = [f"gpu_{letter}" for letter in "abcd"]  # 2x the slots
DATA = (date(2026, 1, 1), date(2026, 1, 16))
LOGICAL_DATE = "2026-01-15T00:00:00Z"
AIRFLOW_POOL = "mlops-gpu-celery-test"
CATALOGUE = {
    "apiVersion": "mlops.airflow/v1",
    "pools": {
        "cpu": {"description": "CPU nodes", "cpu": "1", "memory": "2Gi", "airflow_pool": "mlops-cpu",
                "airflow_pool_slots": 8},
        "gpu": {"description": f"{GPU_SLOTS} GPUs for this test", "gpu_resource": "nvidia.com/gpu",
                "gpus_per_node": GPU_SLOTS, "cpu": "1", "memory": "2Gi", "airflow_pool": AIRFLOW_POOL,
                "airflow_pool_slots": GPU_SLOTS},
    },
}


def _write_specs(models_dir: Path) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in MODELS_ON_GPU:
        spec = yaml.safe_load((MODELS / "churn.yaml").read_text())
        spec.pop("notifications", None)
        spec.update(name=name, schedule=None)
        spec["scoring"] = {**spec.get("scoring", {}), "schedule": None}
        spec["monitoring"] = {**spec.get("monitoring", {}), "schedule": None}
        spec["dataset"]["window"]["days"] = 7  # small: the trainer is quick
        spec["compute"].update(backend="local", pool="gpu", gpus=1, retries=0)
        spec["evaluation"]["bootstrap_samples"] = 50
        (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _prepare_files(deployment: CeleryDeployment) -> None:
    from mlflow import MlflowClient

    from mlops import synthetic

    _write_specs(deployment.models_dir)
    deployment.compute_dir.mkdir(parents=True, exist_ok=True)
    (deployment.compute_dir / "pools.yaml").write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    synthetic.generate("churn", *DATA, deployment.data_root)
    # The MLflow store's schema exists before anything trains (as a tracking server's database would).
    Path(deployment.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    MlflowClient(tracking_uri=deployment.tracking_uri).search_experiments()


@pytest.fixture(scope="module")
def celery_airflow():
    require("the CeleryExecutor test needs PostgreSQL and Redis", [postgres_problem(), redis_problem()])
    timings: dict[str, float] = {}
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="mlops-celery-"))
    db_name = f"mlops_celery_{secrets.token_hex(4)}"
    redis_db = take_redis_db()
    create_database(db_name)
    deployment = CeleryDeployment(root=root, db_name=db_name, port=free_port(), redis_db=redis_db,
                                  compute_dir=root / "compute")
    failed = True
    try:
        _prepare_files(deployment)
        deployment.prepare()  # db migrate + pools sync from the test catalogue
        deployment.start()
        deployment.wait_until_ready([f"{m}__train" for m in MODELS_ON_GPU])
        deployment.wait_for_workers()
        timings["deployment up"] = time.perf_counter() - started
        deployment.timings["up (DB, migrate, pools, components, workers, DAGs parsed)"] = timings["deployment up"]
        yield deployment
        failed = False
    finally:
        stop_started = time.perf_counter()
        try:
            outcome = deployment.stop()
            leftovers = deployment.leftover_processes()
        finally:
            left_keys = flush_redis_db(redis_db)
            drop_database(db_name)
        REPORT.append(f"  CeleryExecutor deployment: up in {timings.get('deployment up', 0):.0f}s, stopped "
                      f"(SIGTERM per process group), Redis db flushed and database dropped in "
                      f"{time.perf_counter() - stop_started:.0f}s: {outcome}")
        assert not leftovers, f"processes of the deployment still running after the stop: {leftovers}"
        assert set(outcome.values()) == {"terminated"}, f"not every component stopped on SIGTERM: {outcome}"
        assert left_keys == 0, f"Redis db {redis_db} still has {left_keys} keys"
        assert not database_exists(db_name), f"database {db_name} is still there"
        if failed:
            print(f"{deployment.log_tails()}\nthe CeleryExecutor deployment's files are kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


class PoolSampler(threading.Thread):
    """The GPU pool's occupied slots as the API reports them, sampled while the runs go."""

    def __init__(self, api):
        super().__init__(daemon=True, name="gpu-pool-sampler")
        self.api, self.halt, self.samples, self.errors = api, threading.Event(), [], []

    def run(self):
        while not self.halt.is_set():
            try:
                pool = self.api.get(f"/api/v2/pools/{AIRFLOW_POOL}")
                self.samples.append((pool["running_slots"], pool["queued_slots"], pool["occupied_slots"]))
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))
            self.halt.wait(0.5)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (one ending as another starts does not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_celery_workers_train_within_the_gpu_pool(celery_airflow):
    deployment = celery_airflow
    api = deployment.client()
    pool = api.get(f"/api/v2/pools/{AIRFLOW_POOL}")
    assert pool["slots"] == GPU_SLOTS, pool

    sampler = PoolSampler(deployment.client())
    sampler.start()
    began = time.perf_counter()
    runs = {}
    for model in MODELS_ON_GPU:
        dag_id = f"{model}__train"
        api.unpause(dag_id)
        runs[dag_id] = api.trigger(dag_id, LOGICAL_DATE)
    finished = {}
    try:
        for dag_id, run_id in runs.items():
            finished[dag_id] = wait_for_run(api, dag_id, run_id, timeout=600, poll=3)
    finally:
        sampler.halt.set()
        sampler.join(timeout=10)
    wall = time.perf_counter() - began

    failures = [api.failure_report(d, r) for d, r in runs.items() if finished[d]["state"] != "success"]
    assert not failures, "\n\n".join(failures)

    tis = {}  # dag_id -> task_id -> task instance
    for dag_id, run_id in runs.items():
        listed = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        tis[dag_id] = {ti["task_id"]: ti for ti in listed}
        assert {t: ti["state"] for t, ti in tis[dag_id].items()} == dict.fromkeys(
            ("check_request", "validate_data", "train", "evaluate", "promote"), "success"), tis[dag_id]
    trains = [tis[d]["train"] for d in runs]
    for ti in trains:
        assert (ti["pool"], ti["pool_slots"]) == (AIRFLOW_POOL, 1), ti
        assert ti["queue"] == deployment.queue, ti
        assert ti["try_number"] == 1, ti
    intervals = [(_at(ti["start_date"]), _at(ti["end_date"])) for ti in trains]
    overlap = max_overlap(intervals)
    assert overlap <= GPU_SLOTS, f"{overlap} GPU train tasks ran at once on a {GPU_SLOTS}-slot pool: {intervals}"
    assert overlap == GPU_SLOTS, f"the GPU train tasks never ran {GPU_SLOTS} at once: {intervals}"
    assert len(trains) >= 2 * GPU_SLOTS

    # The pool as the scheduler sees it: never more than its slots taken.
    assert not sampler.errors, sampler.errors[:3]
    assert sampler.samples and max(s[2] for s in sampler.samples) <= GPU_SLOTS, sampler.samples

    # Both Celery workers ran tasks (the hostname each one reports is its own; see celery_deployment).
    workers = {deployment.worker_name(w) for w in deployment.workers}
    by_host: dict[str, list[str]] = {}
    for dag_id, per_task in tis.items():
        for task_id, ti in per_task.items():
            by_host.setdefault(ti["hostname"], []).append(f"{dag_id}.{task_id}")
    assert set(by_host) == workers, by_host
    # ... and each worker's own log names the task instances it reports (the hostname is no mere label).
    logs = {deployment.worker_name(w): (deployment.logs_dir / f"{w}.log").read_text(errors="replace")
            for w in deployment.workers}
    for dag_id, per_task in tis.items():
        for task_id, ti in per_task.items():
            ran_it = [name for name, text in logs.items() if ti["id"] in text]
            assert ran_it == [ti["hostname"]], (f"{dag_id}.{task_id} reports {ti['hostname']}, found in the "
                                                f"logs of {ran_it}")

    first = min(start for start, _ in intervals)
    REPORT.append(f"CeleryExecutor: {len(trains)} GPU train tasks on a {GPU_SLOTS}-slot pool, max overlap "
                  f"{overlap} (pool occupied max {max(s[2] for s in sampler.samples)}), runs done in {wall:.0f}s")
    for dag_id, ti in zip(runs, trains):
        start, end = _at(ti["start_date"]), _at(ti["end_date"])
        REPORT.append(f"  {dag_id}.train on {ti['hostname']}: +{(start - first).total_seconds():.1f}s .. "
                      f"+{(end - first).total_seconds():.1f}s")
    REPORT.append("  tasks per worker: " + ", ".join(f"{h}={len(t)}" for h, t in sorted(by_host.items())))
    print("\n".join(REPORT[-(len(trains) + 2):]))


def test_max_overlap_counts_what_runs_at_once():
    """The measure the test above relies on: back-to-back is not overlap, nested and staggered are."""
    t = [datetime(2026, 1, 1, 0, 0, s) for s in range(10)]
    assert max_overlap([]) == 0
    assert max_overlap([(t[0], t[2]), (t[2], t[4]), (t[4], t[6])]) == 1
    assert max_overlap([(t[0], t[5]), (t[1], t[2]), (t[3], t[4])]) == 2
    assert max_overlap([(t[0], t[3]), (t[1], t[4]), (t[2], t[5]), (t[6], t[7])]) == 3
