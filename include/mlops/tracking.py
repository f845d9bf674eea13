"""MLflow access: one tracking setup, the tag vocabulary, and the registry look-ups the platform needs.

Tags are the contract between the steps and with later tools (fleet page, rollback, monitoring):
every run and model version this platform writes carries them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlops.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
}

# Tag keys (runs and model versions).
MODEL = "mlops.model"
DAG_ID = "mlops.airflow.dag_id"
RUN_ID = "mlops.airflow.run_id"
LOGICAL_DATE = "mlops.airflow.logical_date"
TRY_NUMBER = "mlops.airflow.try_number"
AIRFLOW_INTERVAL_START = "mlops.airflow.data_interval_start"  # the run's own interval ("" when it has none)
AIRFLOW_INTERVAL_END = "mlops.airflow.data_interval_end"
# The interval of data the model was trained on (the window); what "newer data" compares.
INTERVAL_START = "mlops.data_interval_start"
INTERVAL_END = "mlops.data_interval_end"
WINDOW_FIRST = "mlops.window.first_day"
WINDOW_LAST = "mlops.window.last_day"
WINDOW_ANCHOR = "mlops.window.anchored_by"
FINGERPRINT = "mlops.data_fingerprint"
SPEC_HASH = "mlops.spec_hash"
CODE_VERSION = "mlops.code_version"
GIT_SHA = "mlops.git_sha"
IMAGE_DIGEST = "mlops.image_digest"
CACHE_KEY = "mlops.cache_key"
CACHE_HIT = "mlops.cache_hit"
REUSED_RUN = "mlops.reused_run_id"
KIND = "mlops.run_kind"  # "train", "cache_hit", "evaluate", "sweep", "trial"
# Sweeps: on the sweep's parent run, its trials' child runs and the version its best parameters trained.
SWEEP_STUDY = "mlops.tuning.study"
SWEEP_RUN = "mlops.tuning.sweep_run_id"
SWEEP_BEST_TRIAL = "mlops.tuning.best_trial"
SWEEP_BEST_RUN = "mlops.tuning.best_trial_run_id"
TRIAL_NUMBER = "mlops.tuning.trial"
TRIAL_STATE = "mlops.tuning.trial_state"
SWEEP_VERSION_TAGS = (SWEEP_STUDY, SWEEP_RUN, SWEEP_BEST_TRIAL, SWEEP_BEST_RUN)
PARENT_RUN = "mlflow.parentRunId"  # MLflow's own: nests a run under another in the UI

EXPLANATION = "mlops.explanation"  # model version tag: its top features' permutation importance (JSON)
REFERENCE_PROFILE = "reference_profile.json"
REFERENCE_PROFILE_URI = "mlops.reference_profile"  # model version tag: where its training profile is


def switch_off_telemetry() -> None:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def client(settings: Settings) -> MlflowClient:
    """A client bound to the platform's tracking store (imports mlflow lazily)."""
    switch_off_telemetry()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars in task logs are noise
    import mlflow
    from mlflow import MlflowClient

    if settings.tracking_uri.startswith("sqlite:///"):
        _create_sqlite_store_once(settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    return MlflowClient(tracking_uri=settings.tracking_uri)


_READY_STORES: set[str] = set()


def _create_sqlite_store_once(uri: str) -> None:
    """A new SQLite store is created (schema migrations) by whichever process touches it first; two
    trainers starting together on a fresh store would both migrate it and one fails. One at a time, then."""
    if uri in _READY_STORES:
        return
    from pathlib import Path

    from filelock import FileLock
    from mlflow import MlflowClient

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db) + ".init.lock", timeout=300):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    _READY_STORES.add(uri)


def experiment_id(settings: Settings, model: str) -> str:
    """One experiment per model, with artifacts where the platform says (never ./mlruns of the cwd)."""
    c = client(settings)
    name = f"mlops/{model}"
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # A tracking server keeps its own artifact store unless told otherwise; a local store needs a location
    # (else MLflow writes ./mlruns under whatever the working directory is).
    server = settings.tracking_uri.startswith(("http://", "https://"))
    location = None if server and settings.storage.artifact_root is None else \
        f"{settings.artifact_root.rstrip('/')}/{model}"
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another task
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def version_for_run(settings: Settings, model: str, run_id: str) -> ModelVersion | None:
    """The registered version a training run produced, or None."""
    versions = client(settings).search_model_versions(f"name = '{model}' and run_id = '{run_id}'")
    return versions[0] if versions else None


def training_run_id(model: str, version: ModelVersion) -> str:
    """The MLflow run that trained `version`. Every version the platform registers has one; a version
    registered by hand from a bare artifact does not, and nothing can be read about its data or metrics."""
    if version.run_id is None:
        raise ValueError(f"{model} v{version.version} was registered without an MLflow run, so its metrics and "
                         f"data are unknown: point the alias back at a trained version "
                         f"(python -m mlops.registry rollback {model} --to-version N)")
    run_id: str = version.run_id
    return run_id


def version_by_alias(settings: Settings, model: str, alias: str) -> ModelVersion | None:
    """The version the alias points at; None when the model or the alias does not exist. A refusal of the
    credentials is raised, never read as "no champion" (that would let a challenger replace one)."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    try:
        return c.get_model_version_by_alias(model, alias)
    except MlflowException as exc:
        if exc.error_code == "UNAUTHENTICATED":
            raise
        if exc.error_code == "PERMISSION_DENIED":
            # MLflow's basic-auth server answers 403 for a model that does not exist yet; a model that
            # exists but may not be read is a real refusal.
            if c.search_registered_models(filter_string=f"name = '{model}'", max_results=1):
                raise
        return None


def find_cached_training(settings: Settings, model: str,
                         cache_key: str) -> tuple[Run, ModelVersion] | tuple[None, None]:
    """An earlier successful training run with the same cache key that has a registered version."""
    c = client(settings)
    exp_id = experiment_id(settings, model)
    runs = c.search_runs(
        [exp_id],
        filter_string=f"tags.`{CACHE_KEY}` = '{cache_key}' and tags.`{KIND}` = 'train' "
                      "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        max_results=5,
    )
    for run in runs:
        version = version_for_run(settings, model, run.info.run_id)
        if version is not None:
            return run, version
    return None, None


def attach_validation(settings: Settings, run_id: str, summary: dict[str, Any]) -> None:
    """Put the validation result and this run's Data Docs pages on the MLflow run they belong to."""
    from pathlib import Path

    c = client(settings)
    if summary.get("result_path") and Path(summary["result_path"]).is_file():
        c.log_artifact(run_id, summary["result_path"], "validation")
    for page in summary.get("docs_pages") or []:
        if Path(page).is_file():
            c.log_artifact(run_id, page, "validation/data_docs")
    if summary.get("docs_path"):
        c.set_tag(run_id, "mlops.data_docs", summary["docs_path"])
