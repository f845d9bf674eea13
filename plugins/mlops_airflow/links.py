"""Operator extra links: from a task in the Airflow UI to what it produced.

- train ("MLflow run"): the MLflow run that holds the model (the reused run on a cache hit);
- evaluate, promote, resolve_version and retire_old_version of a deploy ("Model version"): the registered
  model version in MLflow;
- retire_old_version ("Endpoint health"): the health check of the endpoint the rollout left serving;
- validate_data, validate_batch ("Data Docs"): this validation's GX Data Docs page, served by the plugin's
  fleet app (`/mlops/data-docs/<model>/...`, behind Airflow's login), or the model's Data Docs index when the
  validation failed (a failed task has no XCom).

In Airflow 3 a task's links are computed by the worker when the task ends (success or failure) and stored
as XComs (`_link_<class name>`); the API server only reads those back. So `get_link` runs next to the task,
with the real operator and the task's own settings (`MLOPS_MLFLOW_UI_URL`, `MLOPS_REPORTS_DIR`). It reads the
task's return value (only once the task succeeded: a failed or deferred task has none) and returns "" when
there is nothing to link to. Imported at DAG-parse time by the operators: nothing heavy here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
from airflow.sdk import BaseOperatorLink

FLEET_PREFIX = "/mlops"  # where plugin.py mounts the fleet app


def _return_value(ti_key) -> Any:
    if not _succeeded(ti_key):
        return None
    try:
        from airflow.sdk.execution_time.xcom import XCom  # the configured XCom backend

        return XCom.get_value(ti_key=ti_key, key="return_value")
    except Exception:  # noqa: BLE001 - no XCom, or no way to reach it: no link rather than a broken task end
        return None


def _succeeded(ti_key) -> bool:
    """Whether the task that ends now succeeded. Links are computed at every end, failed or deferred too,
    when there is no return value to read; asking for it anyway makes the task SDK log an error
    ("XCom not found") in the log of every failed task. A key without a state is looked up as before."""
    state = getattr(ti_key, "state", None)
    return state is None or str(getattr(state, "value", state)) == "success"


def _model_name(operator, value: Any) -> str | None:
    if isinstance(value, dict) and value.get("model"):
        return str(value["model"])
    spec = getattr(operator, "spec", None)
    return getattr(spec, "name", None)


def _settings():
    from mlops.settings import get_settings

    return get_settings()


def airflow_base_url() -> str:
    """The API server's public base (`[api] base_url`), empty for a server at the site root."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # noqa: BLE001 - outside a configured Airflow
        base = ""
    return base.rstrip("/")


def data_docs_url(model: str, relative: str) -> str:
    return f"{airflow_base_url()}{FLEET_PREFIX}/data-docs/{quote(model, safe='')}/{quote(relative)}"


@attrs.define()
class MlflowRunLink(BaseOperatorLink):
    """The MLflow run of the train task (the run that holds the model; on a cache hit, the reused run)."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        from mlops.fleet import mlflow_run_url

        value = _return_value(ti_key)
        if not isinstance(value, dict) or not value.get("run_id"):
            return ""
        return mlflow_run_url(_settings(), str(value["run_id"]))


@attrs.define()
class ModelVersionLink(BaseOperatorLink):
    """The registered model version: the challenger evaluate judged, or the champion promote installed."""

    name = "Model version"

    def get_link(self, operator, *, ti_key) -> str:
        from mlops.fleet import mlflow_model_version_url

        value = _return_value(ti_key)
        if not isinstance(value, dict):
            return ""
        # evaluate returns the evidence (challenger_version); promote returns PromotionResult (champion); a
        # deploy's resolve its plan (version), its retire the rollout's summary (to_version).
        version = (value.get("challenger_version") or value.get("champion") or value.get("to_version")
                   or value.get("version"))
        model = _model_name(operator, value)
        return mlflow_model_version_url(_settings(), model, version) if model and version else ""


@attrs.define()
class DataDocsLink(BaseOperatorLink):
    """This validation's Data Docs page (the row checks' page when there is one), through the fleet app."""

    name = "Data Docs"

    def get_link(self, operator, *, ti_key) -> str:
        from mlops.fleet import data_docs_dir, data_docs_relative

        value = _return_value(ti_key)
        model = _model_name(operator, value)
        if not model:
            return ""
        settings = _settings()
        pages = list(value.get("docs_pages") or []) if isinstance(value, dict) else []
        # The row checks' page first (GX files suite "<model>.rows" under validations/<model>/rows/).
        pages.sort(key=lambda p: (f"/{model}/rows/" not in Path(p).as_posix(), str(p)))
        for page in pages:
            relative = data_docs_relative(settings, model, page)
            if relative:
                return data_docs_url(model, relative)
        if (data_docs_dir(settings, model) / "index.html").is_file():
            return data_docs_url(model, "index.html")
        return ""


@attrs.define()
class EndpointLink(BaseOperatorLink):
    """The endpoint a rollout left serving: its health check (200 once the model is loaded)."""

    name = "Endpoint health"

    def get_link(self, operator, *, ti_key) -> str:
        value = _return_value(ti_key)
        endpoint = value.get("endpoint") if isinstance(value, dict) else None
        return f"{str(endpoint).rstrip('/')}/health" if endpoint else ""


TRAIN_LINKS = (MlflowRunLink(),)
VERSION_LINKS = (ModelVersionLink(),)
VALIDATION_LINKS = (DataDocsLink(),)
DEPLOYED_LINKS = (ModelVersionLink(), EndpointLink())
ALL_LINKS = [MlflowRunLink(), ModelVersionLink(), DataDocsLink(), EndpointLink()]
