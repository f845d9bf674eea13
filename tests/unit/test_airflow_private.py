"""The dev tools' one seam onto Airflow internals: it holds on the installed Airflow, and when Airflow
changes an internal it says which one, in which version, and what to update."""

import ast
import inspect
from pathlib import Path

import airflow
import pytest
from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
from airflow.sdk.definitions import dag as sdk_dag

from tools import airflow_private

SCHEDULER_STEP = "SchedulerJobRunner._create_dag_runs_asset_triggered"


def test_the_installed_airflow_still_has_the_internals_the_tools_use():
    airflow_private.check()  # raises AirflowInternalChanged naming what moved


def test_a_removed_internal_is_named_with_the_airflow_version(monkeypatch):
    monkeypatch.delattr(SchedulerJobRunner, "_create_dag_runs_asset_triggered")
    with pytest.raises(airflow_private.AirflowInternalChanged) as err:
        airflow_private.check()
    message = str(err.value)
    assert f"Airflow {airflow.__version__} changed internals" in message
    assert f"written for Airflow {airflow_private.WRITTEN_FOR}" in message
    assert f"{SCHEDULER_STEP} no longer exists" in message and "tools/airflow_private.py" in message
    assert "_run_task" not in message  # only what changed is named


def test_a_changed_signature_names_the_missing_arguments(monkeypatch):
    def _run_task(*, ti, task):  # what a later Airflow might take
        raise AssertionError("never called by check()")

    monkeypatch.setattr(sdk_dag, "_run_task", _run_task)
    with pytest.raises(airflow_private.AirflowInternalChanged,
                       match=r"airflow\.sdk\.definitions\.dag\._run_task no longer takes run_triggerer "
                             r"\(it takes task, ti\)"):
        airflow_private.check()


def test_no_plugin_module_imports_a_private_airflow_name():
    """Private Airflow calls live in tools/ only: the shipped plugin keeps to Airflow's public API."""
    import mlops_airflow

    root = Path(inspect.getfile(mlops_airflow)).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow":
                offenders += [f"{path.relative_to(root)}: from {node.module} import {a.name}"
                              for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr in ("_create_dag_runs_asset_triggered", "_run_task"):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}: .{node.attr}")
    assert not offenders, offenders
