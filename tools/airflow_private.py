"""The one place the dev tools call Airflow internals that are not public API.

The laptop demo has no scheduler, so it borrows two of Airflow's private functions: the scheduler's own
step that creates a run from queued asset events, and the in-process task runner behind `dag.test()`.
Neither is promised to stay; `check()` says loudly which one moved and in which Airflow version, and
tests/unit/test_airflow_private.py runs it, so an Airflow upgrade fails there and not halfway through a demo.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

WRITTEN_FOR = "3.3.2"  # the Airflow version these calls were written against


class AirflowInternalChanged(RuntimeError):
    """An Airflow internal the dev tools rely on is gone or takes other arguments."""


def _internals() -> dict[str, tuple[Callable[..., Any] | None, set[str]]]:
    """name -> (the function, or None if it is gone; the keyword arguments the tools pass it)."""
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.sdk.definitions import dag as sdk_dag

    return {
        "airflow.jobs.scheduler_job_runner.SchedulerJobRunner._create_dag_runs_asset_triggered": (
            getattr(SchedulerJobRunner, "_create_dag_runs_asset_triggered", None), {"dag_models", "session"}),
        "airflow.sdk.definitions.dag._run_task": (
            getattr(sdk_dag, "_run_task", None), {"ti", "task", "run_triggerer"}),
    }


def check() -> None:
    """Raise AirflowInternalChanged naming every internal that is gone or no longer takes our arguments."""
    import airflow

    problems = []
    for name, (function, keywords) in _internals().items():
        if function is None:
            problems.append(f"{name} no longer exists")
            continue
        accepted = set(inspect.signature(function).parameters)
        if not keywords <= accepted:
            problems.append(f"{name} no longer takes {', '.join(sorted(keywords - accepted))} "
                            f"(it takes {', '.join(sorted(accepted - {'self'}))})")
    if problems:
        raise AirflowInternalChanged(
            f"Airflow {airflow.__version__} changed internals that tools/ uses (written for Airflow {WRITTEN_FOR}): "
            + "; ".join(problems) + ". Update tools/airflow_private.py to what this Airflow version does instead.")


@functools.cache
def _checked() -> None:
    check()


def create_asset_triggered_runs(dag_models: list, session) -> None:
    """The scheduler's step that turns queued asset events into DAG runs (and clears the queue)."""
    _checked()
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    SchedulerJobRunner(job=Job())._create_dag_runs_asset_triggered(dag_models=dag_models, session=session)


def run_task_in_process(ti, task) -> None:
    """Run one scheduled task instance in this process, as `dag.test()` does (deferrals included)."""
    _checked()
    from airflow.sdk.definitions.dag import _run_task

    _run_task(ti=ti, task=task, run_triggerer=True)
