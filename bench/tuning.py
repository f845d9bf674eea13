"""What a sweep costs beyond its trainer: 20 trials, 2 at once, on the local backend of a real Airflow (the
LocalExecutor, scheduler, dag-processor and API server of `make ui`, on a temporary home), twice in one run:
with the warm trial runner (the default) and with a new Python process per trial (MLOPS_TUNING_WARM_RUNNER=false),
the baseline.

The trainer sleeps `--fit-seconds` inside the author's train call, so the trainer's own time is known; each
trial also reports the fit time the platform measured around that call. Per trial, the overhead is the trial
task's wall time in Airflow (its start to its end) minus that fit time. For the sweep, the ideal wall time is
(sum of fit times + sum of trial overheads) / parallelism; the ratio of the sweep's wall time (plan_1's start to
select_best's end) to it shows what the rounds (plan and tell tasks between them) add.

    python bench/tuning.py [--trials 20] [--parallel 2] [--fit-seconds 2]

Targets: at most 2 s of overhead per trial, and a sweep wall time at most 1.1x the ideal.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests")]

import local_airflow  # noqa: E402  (scripts/: `make ui`'s Airflow)

MODEL = "bench_tune"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_spec(models: Path, trials: int, parallel: int, fit_seconds: float) -> None:
    spec = yaml.safe_load((ROOT / "include" / "models" / "demand.yaml").read_text())
    for section in ("serving", "notifications"):
        spec.pop(section, None)
    spec.update(name=MODEL, schedule=None)
    spec["scoring"] = {**spec.get("scoring", {}), "schedule": None}
    spec["monitoring"] = {**spec.get("monitoring", {}), "schedule": None}
    spec["trainer"] = {"function": "tuning_models:train_ridge_slowly", "predict": "tuning_models:predict",
                       "hyperparameters": {"alpha": 1000.0, "weekend": False, "seconds": fit_seconds}, "seed": 7}
    spec["tuning"] = {"parameters": {"alpha": {"type": "float", "low": 0.001, "high": 10000.0, "log": True},
                                     "weekend": {"type": "categorical", "choices": [True, False]}},
                      "trials": trials, "max_trials": trials, "parallelism": parallel, "max_parallelism": parallel,
                      "rounds": -(-trials // parallel), "sampler": "random", "pruner": "none"}
    spec["compute"]["retries"] = 0
    spec["evaluation"]["guardrails"] = []
    models.mkdir(parents=True, exist_ok=True)
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


class Api:
    def __init__(self, url: str, password: str):
        self.url = url
        body = json.dumps({"username": local_airflow.USER, "password": password}).encode()
        request = urllib.request.Request(f"{url}/auth/token", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            self.token = json.load(resp)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.load(resp) if resp.status != 204 else {}


def wait_for_dag(api: Api, dag_id: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            api.call("GET", f"/api/v2/dags/{dag_id}")
            return
        except OSError:
            time.sleep(2)
    raise SystemExit(f"{dag_id} was not parsed within {timeout:.0f} s")


def run_sweep(api: Api, dag_id: str, logical_date: str, trials: int, parallel: int) -> dict:
    run_id = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {
        "logical_date": logical_date, "conf": {"trials": trials, "parallel_trials": parallel}})["dag_run_id"]
    # The sweep ends at select_best; what follows (train, evaluate, promote) is any training run's.
    while True:
        best = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/select_best")["state"]
        state = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if best == "success":
            break
        if best in ("failed", "upstream_failed") or state == "failed":
            raise SystemExit(f"the sweep {run_id} failed ({best}); see the task logs under the bench's AIRFLOW_HOME")
        time.sleep(2)
    tis = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
    sweep = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/plan_1/xcomEntries/sweep")
    value = sweep["value"]
    return {"run_id": run_id, "tis": tis, "study": (json.loads(value) if isinstance(value, str) else value)["study"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def figures(run: dict, studies_url: str, fit_seconds: float) -> dict:
    import optuna

    from mlops.tuning.storage import open_storage

    tis = run["tis"]
    trials = [ti for ti in tis if ti["task_id"].startswith("trials_") and ti["state"] == "success"]
    study = optuna.load_study(study_name=run["study"], storage=open_storage(studies_url, "the bench's studies"))
    by_number = {t.number: float(t.user_attrs.get("fit_seconds", fit_seconds)) for t in study.trials}
    overheads, fits = [], []
    for ti in trials:
        number = int(ti["rendered_map_index"].split()[0].lstrip("#"))
        measured = by_number.get(number, fit_seconds)
        fits.append(measured)
        overheads.append((at(ti["end_date"]) - at(ti["start_date"])).total_seconds() - measured)
    named = {ti["task_id"]: ti for ti in tis if ti["map_index"] == -1}
    wall = (at(named["select_best"]["end_date"]) - at(named["plan_1"]["start_date"])).total_seconds()
    rounds = [ti for ti in tis if ti["task_id"].startswith(("plan_", "tell_")) and ti["state"] == "success"]
    return {"trials": len(trials), "fit": fits, "overhead": overheads, "wall": wall,
            "round_tasks": sum((at(t["end_date"]) - at(t["start_date"])).total_seconds() for t in rounds)}


def report(name: str, f: dict, parallel: int) -> float:
    overhead = f["overhead"]
    ideal = (sum(f["fit"]) + sum(overhead)) / parallel
    print(f"{name}: {f['trials']} trials, fit {statistics.mean(f['fit']):.2f} s each; overhead per trial mean "
          f"{statistics.mean(overhead):.2f} s, median {statistics.median(overhead):.2f} s, max {max(overhead):.2f} s; "
          f"sweep {f['wall']:.1f} s against an ideal {ideal:.1f} s (ratio {f['wall'] / ideal:.2f}); plan and tell "
          f"tasks {f['round_tasks']:.1f} s in all")
    return statistics.mean(overhead)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--fit-seconds", type=float, default=2.0)
    a = p.parse_args(argv)
    import signal

    from mlops import synthetic

    # `timeout` and Ctrl-C alike: the components run in sessions of their own and are stopped in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    home = Path(tempfile.mkdtemp(prefix="mlops-bench-tuning-"))
    write_spec(home / "models", a.trials, a.parallel, a.fit_seconds)
    synthetic.generate("demand", *(datetime(2025, 12, 1).date(), datetime(2026, 1, 20).date()), home / "data")
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_"))}
    base.update({
        "AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "airflow" / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False", "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5", "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false", "MLOPS_PROJECT_ROOT": str(ROOT), "MLOPS_HOME": str(home / "platform"),
        "MLOPS_DATA_ROOT": str(home / "data"), "MLOPS_MODELS_DIR": str(home / "models"),
        "MLOPS_TRAINER_PACKAGES": "trainers,tuning_models",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),
    })
    (home / "airflow").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=base, check=True, capture_output=True)
    studies_url = f"sqlite:///{home / 'platform' / 'tuning' / 'studies.db'}"
    results = {}
    for name, warm in (("subprocess per trial (baseline)", "false"), ("warm trial runner", "true")):
        env = local_airflow.component_env({**base, "MLOPS_TUNING_WARM_RUNNER": warm}, port)
        processes = local_airflow.start(env, port)
        try:
            local_airflow.wait_healthy(processes, port)
            password = json.loads(local_airflow.passwords_file(home / "airflow").read_text())[local_airflow.USER]
            api = Api(f"http://127.0.0.1:{port}", password)
            wait_for_dag(api, f"{MODEL}__tune")
            # A window of its own per sweep: a new study, not the first one's finished trials.
            date = "2026-01-15T00:00:00Z" if warm == "false" else "2026-01-16T00:00:00Z"
            run = run_sweep(api, f"{MODEL}__tune", date, a.trials, a.parallel)
        finally:
            local_airflow.stop(processes)
            from mlops.tuning import runner

            runner.stop_all(runner.runner_folders(home / "platform"))
        results[name] = figures(run, studies_url, a.fit_seconds)
    print(f"\n{a.trials} trials, {a.parallel} at once, the trainer fits for {a.fit_seconds:.1f} s (LocalExecutor, "
          f"{local_airflow.parallelism()} workers, {os.cpu_count()} cores)")
    means = {name: report(name, f, a.parallel) for name, f in results.items()}
    base_mean, warm_mean = means["subprocess per trial (baseline)"], means["warm trial runner"]
    print(f"overhead per trial, warm runner / subprocess: {warm_mean / base_mean:.2f} "
          f"({warm_mean:.2f} s against {base_mean:.2f} s); target: at most 2 s")
    print(f"files kept in {home}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
