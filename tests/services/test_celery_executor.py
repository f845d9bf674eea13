"""Airflow's distributed executor: the scheduler with the CeleryExecutor, Redis as the broker, PostgreSQL as
metadata DB and Celery result backend, and two Celery workers (2 processes each: 4 worker slots), train
GPU models whose catalogue pool's Airflow pool has 2 slots.

Four models (copies of the churn example, 1 GPU each, local backend: the trainer is a subprocess of the
Celery worker) share the test catalogue's GPU pool; one run of each is triggered at once, so 4 GPU train
tasks compete for 2 slots while 4 worker slots are free. From the train task instances' start and end
dates, the number of GPU tasks running at once never exceeds 2 and does reach 2 (the cap is what held
the others back, not a lack of parallelism); every run succeeds, and both workers ran tasks.

On the same deployment, a hyperparameter sweep (`gpu_tune__tune`, 6 trials asked 3 at a time) runs its trials
on the same 2-slot GPU pool with its studies in a PostgreSQL database of their own (an Airflow connection): the
trial tasks never overlap beyond 2; one trial's task, stopped while it runs (its state set to failed through the
REST API, as the UI does), is failed in the study; the run ends with the best of the 5 others, and the sweep
triggered again for the same date runs the one missing trial only.

Then, on the same deployment, a rollback of one of those models triggered while its next (forced) promotion
runs waits for it: both tasks take the model's one-slot promotion pool, and each worker has a lock folder
of its own (celery_deployment), so nothing but the pool keeps them apart. They run one after the other,
promote first, and both succeed.

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

from airflow_deployment import (
    REPORT,
    create_database,
    database_exists,
    drop_database,
    free_port,
    postgres_problem,
    require,
)
from celery_deployment import CeleryDeployment, flush_redis_db, redis_problem, take_redis_db
from helpers import MODELS, ROOT
from waiting import TERMINAL, wait_for, wait_for_run

pytestmark = pytest.mark.services

TESTS = ROOT / "tests"
STUDIES_DB: list[str] = []  # the URL of the studies' database, once the deployment has one
GPU_SLOTS = 2
MODELS_ON_GPU = [f"gpu_{letter}" for letter in "abcd"]  # 2x the slots
DATA = (date(2026, 1, 1), date(2026, 1, 16))
LOGICAL_DATE = "2026-01-15T00:00:00Z"
SERIALISED_MODEL = MODELS_ON_GPU[0]
SECOND_LOGICAL_DATE = "2026-01-14T00:00:00Z"  # another window of the same data: a second version
# How long the rollback may take to start while the promote is held: on this machine a task the scheduler
# may queue is running within a few seconds.
ROLLBACK_HOLD_S = 10
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


TUNED = "gpu_tune"
TUNING_CONN = "mlops_optuna_test"
TUNING = {"parameters": {"alpha": {"type": "float", "low": 0.001, "high": 10000.0, "log": True},
                         "weekend": {"type": "categorical", "choices": [True, False]}},
          "trials": 6, "parallelism": 3, "max_parallelism": 3, "rounds": 2, "sampler": "random", "pruner": "none"}
TRIAL_SECONDS = 4  # each trial sleeps this long first: long enough to watch them overlap and to stop one


def _write_specs(models_dir: Path) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    tuned = yaml.safe_load((MODELS / "demand.yaml").read_text())
    for section in ("notifications", "serving"):
        tuned.pop(section, None)
    tuned.update(name=TUNED, schedule=None, tuning=TUNING)
    tuned["scoring"] = {**tuned.get("scoring", {}), "schedule": None}
    tuned["monitoring"] = {**tuned.get("monitoring", {}), "schedule": None}
    tuned["dataset"]["window"]["days"] = 7
    tuned["trainer"] = {"function": "tuning_models:train_ridge_slowly", "predict": "tuning_models:predict",
                        "hyperparameters": {"alpha": 1000.0, "weekend": False, "seconds": TRIAL_SECONDS}, "seed": 7}
    tuned["evaluation"]["guardrails"] = [{"metric": "r2", "min": 0.5}]
    tuned["evaluation"]["bootstrap_samples"] = 50
    tuned["compute"].update(backend="local", pool="gpu", gpus=1, retries=0)
    (models_dir / f"{TUNED}.yaml").write_text(yaml.safe_dump(tuned, sort_keys=False))
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
    synthetic.generate("demand", *DATA, deployment.data_root)
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
    studies_db = create_database(f"{db_name}_optuna")
    STUDIES_DB.append(studies_db)  # the studies' own database, never Airflow's
    deployment = CeleryDeployment(root=root, db_name=db_name, port=free_port(), redis_db=redis_db,
                                  compute_dir=root / "compute", extra_env={
                                      "MLOPS_TRAINER_PACKAGES": "trainers,tuning_models",
                                      "PYTHONPATH": str(TESTS),
                                      "MLOPS_TUNING_CONN_ID": TUNING_CONN,
                                      f"AIRFLOW_CONN_{TUNING_CONN.upper()}":
                                          studies_db.replace("postgresql+psycopg2://", "postgres://")})
    failed = True
    try:
        _prepare_files(deployment)
        deployment.prepare()  # db migrate + pools sync from the test catalogue
        deployment.start()
        deployment.wait_until_ready([f"{m}__train" for m in MODELS_ON_GPU] + [f"{TUNED}__tune"])
        deployment.wait_for_workers()
        timings["deployment up"] = time.perf_counter() - started
        deployment.timings["up (DB, migrate, pools, components, workers, DAGs parsed)"] = timings["deployment up"]
        yield deployment
        failed = False
    finally:
        stop_started = time.perf_counter()
        from mlops.tuning import runner

        runner.stop_all(runner.runner_folders(deployment.mlops_home))  # the workers' warm trial runners
        try:
            outcome = deployment.stop()
            leftovers = deployment.leftover_processes()
        finally:
            left_keys = flush_redis_db(redis_db)
            drop_database(db_name)
            drop_database(f"{db_name}_optuna")
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
    for dag_id, ti in zip(runs, trains, strict=True):
        start, end = _at(ti["start_date"]), _at(ti["end_date"])
        REPORT.append(f"  {dag_id}.train on {ti['hostname']}: +{(start - first).total_seconds():.1f}s .. "
                      f"+{(end - first).total_seconds():.1f}s")
    REPORT.append("  tasks per worker: " + ", ".join(f"{h}={len(t)}" for h, t in sorted(by_host.items())))
    print("\n".join(REPORT[-(len(trains) + 2):]))


def _trial_tis(api, dag_id: str, run_id: str) -> list[dict]:
    listed = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    return [ti for ti in listed["task_instances"] if ti["task_id"].startswith("trials_")]


def _stop_one_running_trial(api, dag_id: str, run_id: str) -> dict:
    """A trial task once it has run for a second (inside the trainer's sleep), set to failed as the UI does."""
    found: list[dict] = []

    def running():
        if api.run(dag_id, run_id)["state"] in TERMINAL:
            raise AssertionError(f"the sweep ended before a trial ran\n{api.failure_report(dag_id, run_id)}")
        found[:] = [ti for ti in _trial_tis(api, dag_id, run_id) if ti["state"] == "running"]
        return bool(found)

    wait_for(running, 300, poll=0.5, what="a trial task to run")
    time.sleep(1.5)
    ti = found[0]
    api.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/{ti['map_index']}",
              {"new_state": "failed"})
    return ti


def test_a_sweep_runs_its_trials_within_the_gpu_pool_and_resumes_only_what_was_stopped(celery_airflow):
    import optuna

    from mlops.tuning.storage import open_storage

    deployment = celery_airflow
    api = deployment.client()
    dag_id = f"{TUNED}__tune"
    api.unpause(dag_id)
    first = api.trigger(dag_id, LOGICAL_DATE, conf={"trials": 6, "parallel_trials": 3})
    stopped = _stop_one_running_trial(api, dag_id, first)
    assert wait_for_run(api, dag_id, first, timeout=600, poll=2)["state"] == "success", api.failure_report(
        dag_id, first)
    trials = _trial_tis(api, dag_id, first)
    states = sorted(ti["state"] for ti in trials)
    assert states == ["failed"] + ["success"] * 5, [(t["task_id"], t["map_index"], t["state"]) for t in trials]

    storage = open_storage(STUDIES_DB[0], "the test's studies database")
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    by_state = {state: [t for t in study.trials if t.state.name == state] for state in ("COMPLETE", "FAIL")}
    assert len(by_state["COMPLETE"]) == 5 and len(by_state["FAIL"]) == 1, [t.state for t in study.trials]
    (killed,) = by_state["FAIL"]
    assert "killed" in killed.user_attrs["failure"] and killed.number == int(
        stopped["rendered_map_index"].split()[0].lstrip("#")), (killed.user_attrs, stopped)

    # Resumed as the UI does it, by clearing the run: its study asks the one missing trial, and nothing else runs.
    api.post(f"/api/v2/dags/{dag_id}/clearTaskInstances", {"dag_run_id": first, "dry_run": False,
                                                          "only_failed": False, "reset_dag_runs": True})
    wait_for(lambda: api.run(dag_id, first)["state"] not in ("success",), 60, poll=0.5, what="the run to restart")
    assert wait_for_run(api, dag_id, first, timeout=600, poll=2)["state"] == "success", api.failure_report(
        dag_id, first)
    resumed = [ti for ti in _trial_tis(api, dag_id, first) if ti["state"] == "success"]
    assert len(resumed) == 1, [(t["task_id"], t["map_index"], t["state"]) for t in _trial_tis(api, dag_id, first)]
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 6 + ["FAIL"]

    everything = trials + resumed
    for ti in everything:
        assert (ti["pool"], ti["pool_slots"]) == (AIRFLOW_POOL, 1), ti
    intervals = [(_at(ti["start_date"]), _at(ti["end_date"])) for ti in everything if ti["end_date"]]
    overlap = max_overlap(intervals)
    assert overlap == GPU_SLOTS, f"{overlap} trials at once on a {GPU_SLOTS}-slot pool: {intervals}"
    hosts = {ti["hostname"] for ti in everything}
    REPORT.append(f"CeleryExecutor sweep: {len(everything)} trial tasks (one stopped, failed in the study, the "
                  f"resumed run ran 1), max overlap {overlap} on {GPU_SLOTS} slots, on {sorted(hosts)}")
    print(REPORT[-1])


def _task_instance(api, dag_id: str, run_id: str, task_id: str) -> dict | None:
    ti = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", expect=(200, 404))
    return ti if "task_id" in ti else None


def _state(api, dag_id: str, run_id: str, task_id: str) -> str | None:
    return (_task_instance(api, dag_id, run_id, task_id) or {}).get("state")


def _wait_until_running(api, dag_id: str, run_id: str, task_id: str, timeout: float) -> None:
    def running():
        if _state(api, dag_id, run_id, task_id) == "running":
            return True
        if api.run(dag_id, run_id)["state"] in TERMINAL:
            raise AssertionError(f"{dag_id} {run_id} ended before {task_id} ran\n{api.failure_report(dag_id, run_id)}")
        return False

    wait_for(running, timeout, poll=1, what=f"{dag_id}.{task_id} to run")


def _watch_while_held(api, dag_id: str, run_id: str, task_id: str, pool: str) -> tuple[list, list, float]:
    """The task's states from when the scheduler has it until it leaves `scheduled` or ROLLBACK_HOLD_S pass,
    the pool's (running, scheduled) slots meanwhile, and how long that was."""
    wait_for(lambda: _state(api, dag_id, run_id, task_id) is not None, 120, poll=0.5,
             what=f"{dag_id}.{task_id} to be scheduled")
    states, slots = [], []
    started = time.time()
    while time.time() < started + ROLLBACK_HOLD_S:
        state = _state(api, dag_id, run_id, task_id)
        if not states or states[-1] != state:
            states.append(state)
        found = api.get(f"/api/v2/pools/{pool}", expect=(200, 404))
        slots.append((found.get("running_slots"), found.get("scheduled_slots")))
        if state != "scheduled":
            break
        time.sleep(0.5)
    return states, slots, time.time() - started


def _champion(deployment, model: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient(tracking_uri=deployment.tracking_uri).get_model_version_by_alias(model, "champion")
                   .version)
    except MlflowException:
        return None


def test_promote_and_rollback_of_one_model_take_turns_across_workers(celery_airflow):
    """The model's promote is held inside its task (the test holds the model's file lock in both workers'
    lock folders, as a slow registry would hold it), a rollback is triggered meanwhile: it stays scheduled
    while the promote holds the model's promotion pool, runs once the promote is done, and both succeed."""
    from filelock import FileLock

    from mlops.audit import AuditLog
    from mlops.locks import promotion_pool

    deployment, model = celery_airflow, SERIALISED_MODEL
    api = deployment.client()
    train_dag, rollback_dag, pool = f"{model}__train", f"{model}__rollback", promotion_pool(model)
    api.unpause(train_dag)
    api.unpause(rollback_dag)
    if _champion(deployment, model) is None:  # run on its own: first a champion to go back to
        first = api.trigger(train_dag, LOGICAL_DATE)
        assert wait_for_run(api, train_dag, first, timeout=600)["state"] == "success", api.failure_report(
            train_dag, first)
    before = _champion(deployment, model)
    assert before is not None

    gates = []
    for worker in deployment.workers:
        deployment.lock_dir(worker).mkdir(parents=True, exist_ok=True)
        gates.append(FileLock(str(deployment.lock_dir(worker) / f"{model}.promotion.lock")))
        gates[-1].acquire(timeout=10)
    try:
        promoting = api.trigger(train_dag, SECOND_LOGICAL_DATE, conf={
            "force_promote": True, "force_reason": "a second version, to roll back from"})
        _wait_until_running(api, train_dag, promoting, "promote", timeout=600)
        rolling_back = api.trigger(rollback_dag, None, conf={"reason": "the forced version is wrong"})
        states, slots, held = _watch_while_held(api, rollback_dag, rolling_back, "rollback", pool)
    finally:
        for gate in gates:
            gate.release()
    runs = {train_dag: promoting, rollback_dag: rolling_back}
    finished = {d: wait_for_run(api, d, r, timeout=300, poll=2)["state"] for d, r in runs.items()}
    promote = _task_instance(api, train_dag, promoting, "promote")
    rollback = _task_instance(api, rollback_dag, rolling_back, "rollback")
    intervals = {name: (_at(ti["start_date"]), _at(ti["end_date"])) for name, ti in
                 (("promote", promote), ("rollback", rollback))}

    assert intervals["promote"][1] <= intervals["rollback"][0], (
        f"the rollback ran while the promote did: {intervals}; rollback states while the promote was held: "
        f"{states}")
    assert states == ["scheduled"], f"the rollback left `scheduled` while the promote held {pool}: {states}"
    assert all(s == (1, 1) for s in slots), f"{pool} (running, scheduled) while held: {slots}"
    failures = [api.failure_report(d, r) for d, r in runs.items() if finished[d] != "success"]
    assert not failures, "\n\n".join(failures)
    assert (promote["state"], rollback["state"]) == ("success", "success"), (promote, rollback)
    assert (promote["pool"], rollback["pool"]) == (pool, pool)

    records = AuditLog(str(deployment.audit_root), model).records()
    forced = records[-2].to_version
    assert [(r.action, r.to_version) for r in records[-2:]] == [("force_promote", forced), ("rollback", before)]
    assert forced != before and _champion(deployment, model) == before

    start = intervals["promote"][0]
    REPORT.append(f"CeleryExecutor: {model} promote on {promote['hostname']} +0.0s .. "
                  f"+{(intervals['promote'][1] - start).total_seconds():.1f}s, rollback (triggered meanwhile, "
                  f"watched {held:.0f}s in {pool}) on {rollback['hostname']} "
                  f"+{(intervals['rollback'][0] - start).total_seconds():.1f}s .. "
                  f"+{(intervals['rollback'][1] - start).total_seconds():.1f}s")
    print(REPORT[-1])


def test_max_overlap_counts_what_runs_at_once():
    """The measure the test above relies on: back-to-back is not overlap, nested and staggered are."""
    t = [datetime(2026, 1, 1, 0, 0, s) for s in range(10)]
    assert max_overlap([]) == 0
    assert max_overlap([(t[0], t[2]), (t[2], t[4]), (t[4], t[6])]) == 1
    assert max_overlap([(t[0], t[5]), (t[1], t[2]), (t[3], t[4])]) == 2
    assert max_overlap([(t[0], t[3]), (t[1], t[4]), (t[2], t[5]), (t[6], t[7])]) == 3
