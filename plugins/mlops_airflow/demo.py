"""The laptop demo: sample data, every model's training DAG through Airflow for a few logical dates,
then a summary of the champions.

    python -m mlops_airflow.demo [--dates 2026-01-14 2026-01-15] [--models churn demand]

Runs go through `dag.test()` against the Airflow metadata DB (SQLite by default), the MLflow store and
the local compute backend. Exit code 1 if any run failed. Running it again on the same dates, data,
specs and code trains nothing: every train step is a cache hit.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timezone

DEFAULT_DATES = ["2026-01-14", "2026-01-15"]
DATA_START = date(2025, 11, 15)


def ensure_sample_data(settings, specs, last_day: date) -> None:
    from pathlib import Path

    from mlops import synthetic

    for spec in specs:
        dataset = spec.dataset.uri.split("/")[1] if spec.dataset.uri.startswith("{data_root}/") else None
        if dataset not in synthetic.DATASETS:
            continue  # a model with real data: nothing to generate
        newest = synthetic.partition_path(settings.data_root, dataset, last_day)
        if Path(newest).exists():
            continue
        paths = synthetic.generate(dataset, DATA_START, last_day, settings.data_root)
        print(f"generated {len(paths)} daily partitions of '{dataset}' under {settings.data_root}/{dataset}")


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


def run_dag(dag, logical_date: datetime):
    started = time.perf_counter()
    dr = dag.test(logical_date=logical_date)
    return dr, time.perf_counter() - started


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mlops_airflow.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--dates", nargs="+", default=DEFAULT_DATES, help="logical dates (YYYY-MM-DD)")
    p.add_argument("--models", nargs="*", help="model names (default: every valid spec)")
    a = p.parse_args(argv)

    from mlops import tracking

    tracking.switch_off_telemetry()
    from airflow.dag_processing.dagbag import DagBag

    from mlops.registry import CHAMPION_HEADERS, champion_row, format_table, load_valid_specs
    from mlops.settings import get_settings

    settings = get_settings()
    specs = load_valid_specs(settings, a.models)
    dates = sorted(date.fromisoformat(d) for d in a.dates)
    ensure_sample_data(settings, specs, dates[-1])

    bag = DagBag(dag_folder=str(settings.project_root / "dags"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1

    failures, timings = [], defaultdict(list)
    total_started = time.perf_counter()
    for spec in specs:
        dag = bag.dags[spec.dag_id]
        for d in dates:
            logical = datetime.combine(d, datetime.min.time(), tzinfo=timezone.utc)
            dr, seconds = run_dag(dag, logical)
            state = str(getattr(dr.state, "value", dr.state))
            print(f"{spec.dag_id} {d}: {state} in {seconds:.1f}s")
            for task, secs in task_durations(spec.dag_id, dr.run_id).items():
                timings[task].append(secs)
            if state != "success":
                failures.append(f"{spec.dag_id} {d}")
    total = time.perf_counter() - total_started

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
