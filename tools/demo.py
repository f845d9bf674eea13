"""The laptop demo: sample data, every CPU model's training DAG through Airflow for a few logical dates,
then one model watched in production: scored and monitored day by day while its data drifts, until the
monitor asks for retraining; the retraining run starts from the queued asset event, as the scheduler
would start it, and promotes a new champion. Ends with a summary of the champions.

    python -m tools.demo [--dates 2026-01-14 2026-01-15] [--models churn demand] [--watch demand] [--verbose]

Runs go through `dag.test()` against the Airflow metadata DB (SQLite by default), the MLflow store and
the local compute backend. Exit code 1 if any run failed. Running it again on the same dates, data,
specs and code trains nothing: every train step is a cache hit, and the new champion's cooldown keeps
the monitor quiet.

The console gets one line per DAG run as it goes; each run's full task log is written to its own file under
$MLOPS_HOME/logs/demo/<time>/ (the path is printed). --verbose streams the task logs to the console instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tools import demo_serving
from tools.run_log import RunLog

DEFAULT_DATES = ["2026-01-14", "2026-01-15"]
DATA_START = date(2025, 11, 15)
# The watched model's story: its data drifts from DRIFT_FROM; the monitor checks the days before each of
# WATCH_DAYS; data keeps landing until DATA_LAST, which is what the retraining run finds as newest.
DEFAULT_WATCH = "demand"
DRIFT_FROM = date(2026, 1, 17)
WATCH_DAYS = [date(2026, 1, 16) + timedelta(days=i) for i in range(4)]
DATA_LAST = date(2026, 1, 27)


def dataset_of(spec) -> str | None:
    from mlops import synthetic

    dataset = spec.dataset.uri.split("/")[1] if spec.dataset.uri.startswith("{data_root}/") else None
    return dataset if dataset in synthetic.DATASETS else None  # None: a model with real data


def ensure_sample_data(settings, specs, last_day: date, drifting: str | None = None) -> None:
    from mlops import storage, synthetic

    def exists(location) -> bool:  # a local file or an object (MLOPS_DATA_ROOT=gs://...)
        fs, path = storage.filesystem(str(location))
        return fs.exists(path)

    for dataset in sorted({d for d in map(dataset_of, specs) if d}):
        newest = synthetic.partition_path(settings.data_root, dataset, last_day)
        if exists(newest) and exists(synthetic.labels_path(settings.data_root, dataset, last_day)):
            continue
        drift = DRIFT_FROM if dataset == drifting else None
        paths = synthetic.generate(dataset, DATA_START, last_day, settings.data_root, drift_from=drift)
        print(f"generated {len(paths)} daily partitions of '{dataset}' under {settings.data_root}/{dataset}"
              + (f" (drifting from {drift})" if drift else ""))


def _without_credentials(uri: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://***@host/db: never print credentials."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.username or parts.password:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
    return uri


def task_durations(dag_id: str, run_id: str) -> dict[str, float]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id).all()
        return {ti.task_id: (ti.duration or 0.0) for ti in tis}


def unpause(dag_id: str) -> None:
    """As a user does once a DAG is deployed: paused DAGs get no runs from asset events."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({DagModel.is_paused: False})


NOTHING_QUEUED = "not started: no retraining requested"


def watch(bag, spec, settings, runs: RunLog, failures: list[str]) -> list[str]:
    """Score and monitor the model day by day; when the monitor asks for retraining, start the training
    run from the queued asset event as the scheduler would. Returns the story, one line per step."""
    from mlops import tracking
    from tools.asset_runs import run_existing, start_asset_triggered_run

    story = []
    unpause(spec.dag_id)
    before = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    for day in WATCH_DAYS:
        logical = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
        for dag_id in (spec.score_dag_id, spec.monitor_dag_id):
            dr, state = run_dag(runs, spec.name, bag.dags[dag_id], logical)
            if state != "success":
                failures.append(f"{dag_id} {day}")
        check = _xcom(spec.monitor_dag_id, dr.run_id, "check") or {}
        quality = check.get("quality", {})
        q = (f"{quality['metric']} {quality['value']:.3f}" if quality.get("status") == "measured"
             else quality.get("status", "-"))
        story.append(f"{check.get('day', day)}: drifted {', '.join(check.get('drifted_columns') or []) or 'nothing'}; "
                     f"quality {q}; {'ALARM' if check.get('alarm') else 'no alarm'} "
                     f"({'; '.join(check.get('alarm_reasons', []))})")
    started: list[str] = []

    def retrain() -> str:
        run_id = start_asset_triggered_run(spec.dag_id)
        if run_id is None:
            return NOTHING_QUEUED
        started.append(run_id)
        return run_existing(bag.dags[spec.dag_id], run_id)

    state, _ = runs.run(spec.name, spec.dag_id, "asset-triggered", retrain)
    if not started:
        story.append("no retraining requested")
        return story
    run_id = started[0]
    if state != "success":
        failures.append(f"{spec.dag_id} {run_id}")
    after = tracking.version_by_alias(settings, spec.name, spec.promotion.alias)
    moved = (f"champion v{before.version} -> v{after.version}" if before and after and before.version != after.version
             else f"champion stays v{after.version if after else '-'}")
    story.append(f"retraining run {run_id} (started from the queued asset event): {state}; {moved}")
    return story


def _xcom(dag_id: str, run_id: str, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id,
                                                 key="return_value").one_or_none()
        return XComModel.deserialize_value(row) if row is not None else None


def run_dag(runs: RunLog, model: str, dag, logical_date: datetime):
    """One `dag.test()` run, with its line on the console; returns (the DAG run, its state)."""
    finished = []

    def start() -> str:
        finished.append(dag.test(logical_date=logical_date))
        return str(getattr(finished[0].state, "value", finished[0].state))

    state, _ = runs.run(model, dag.dag_id, logical_date.date().isoformat(), start)
    return finished[0], state


def train_all(bag, specs, dates: list[date], runs: RunLog, failures: list[str], timings: dict[str, list]) -> None:
    """Every model's training DAG for every date, collecting the failed runs and the time per task."""
    for spec in specs:
        dag = bag.dags[spec.dag_id]
        for d in dates:
            logical = datetime.combine(d, datetime.min.time(), tzinfo=timezone.utc)
            dr, state = run_dag(runs, spec.name, dag, logical)
            for task, secs in task_durations(spec.dag_id, dr.run_id).items():
                timings[task].append(secs)
            if state != "success":
                failures.append(f"{spec.dag_id} {d}")


def log_dir(home: Path) -> Path:
    return home / "logs" / "demo" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--dates", nargs="+", default=DEFAULT_DATES, help="logical dates (YYYY-MM-DD)")
    p.add_argument("--models", nargs="*", help="model names (default: every valid spec on a CPU pool)")
    p.add_argument("--watch", default=DEFAULT_WATCH, help="the model to score and monitor while its data drifts "
                   "('' for none)")
    p.add_argument("--verbose", action="store_true", help="stream every task's log to the console as it runs "
                   "(default: one line per DAG run, the logs in files)")
    a = p.parse_args(argv)

    from mlops import tracking

    tracking.switch_off_telemetry()
    from mlops.registry import CHAMPION_HEADERS, champion_row, format_table, load_valid_specs
    from mlops.settings import get_settings

    settings = get_settings()
    specs = load_valid_specs(settings, a.models)
    if not a.models:
        for spec in [s for s in specs if s.compute.gpus]:
            print(f"{spec.name} asks for {spec.compute.gpus} GPU(s) on pool '{spec.compute.pool}': left out of the "
                  f"laptop demo (run it with --models {spec.name})")
        specs = [s for s in specs if not s.compute.gpus]
    watched = next((s for s in specs if s.name == a.watch), None)
    dates = sorted(date.fromisoformat(d) for d in a.dates)
    ensure_sample_data(settings, specs, max(dates[-1], DATA_LAST) if watched else dates[-1],
                       dataset_of(watched) if watched else None)

    served = [s for s in specs if s.serving is not None]
    watched_served = watched is not None and watched.serving is not None
    planned = (len(specs) * len(dates) + (2 * len(WATCH_DAYS) + 1 if watched else 0) + len(served)
               + (1 if watched_served else 0))
    runs = RunLog(planned, log_dir(settings.home), a.verbose, model_width=max((len(s.name) for s in specs), default=0))
    if not a.verbose:
        print(f"Task logs: {runs.log_dir}/ (one file per DAG run; --verbose prints them here)")
    with runs.setup():
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(settings.project_root / "dags"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1

    failures, timings = [], defaultdict(list)
    total_started = time.perf_counter()
    train_all(bag, specs, dates, runs, failures, timings)
    story, serving_story = [], []
    try:
        deploy_started = time.perf_counter()
        serving_story = demo_serving.first_deploys(bag, served, settings, runs, failures)
        timings["deploy (first, by hand)"].append(time.perf_counter() - deploy_started)
        if watched is not None:
            watch_started = time.perf_counter()
            story = watch(bag, watched, settings, runs, failures)
            timings["score + monitor + retrain (watched model)"].append(time.perf_counter() - watch_started)
            if watched_served:
                deploy_started = time.perf_counter()
                serving_story += demo_serving.deploy_from_asset(bag, watched, settings, runs, failures)
                timings["deploy (new champion, from its asset event)"].append(time.perf_counter() - deploy_started)
    finally:
        stopped = demo_serving.stop_servers(settings)
    total = time.perf_counter() - total_started

    if story:
        print(f"\n{watched.name} in production (data drifting from {DRIFT_FROM}):")
        print("\n".join(f"  {line}" for line in story))
    if serving_story:
        print("\nOnline serving:")
        print("\n".join(f"  {line}" for line in serving_story + [stopped]))
    print("\nWhere the time went (sum over runs, seconds):")
    print(format_table([{"task": t, "runs": len(v), "total": f"{sum(v):.1f}", "mean": f"{sum(v) / len(v):.1f}"}
                        for t, v in sorted(timings.items(), key=lambda kv: -sum(kv[1]))],
                       {"task": "task", "runs": "runs", "total": "total", "mean": "mean"}))
    print(f"all DAG runs: {total:.1f}s\n")
    print("Champions:")
    print(format_table([champion_row(settings, spec) for spec in specs], CHAMPION_HEADERS))
    print(f"\nMLflow store: {_without_credentials(settings.tracking_uri)}\nAudit log: {settings.audit_root}")
    if failures:
        print(f"\nFAILED runs: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
