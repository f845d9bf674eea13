"""Every `MLOPS_*` variable, declared once: its section, type, default and what it is for.

The variables keep their historic flat names (users set them), so each field names its variable as its
validation alias; the sections only group them. Defaults that depend on other values (the data root under
the home, the home under the project) are filled in by `_derive`, the one place that knows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ComputeBackend = Literal["local", "kubernetes", "gke"]
LOCAL_MLFLOW_UI = "http://localhost:5000"


def setting(env: str, description: str, default: Any = ..., *, shown: str | None = None,
            example: str | None = None, **constraints: Any) -> Any:
    """A field read from the variable `env`; `shown` is the default as the docs print it when it is derived."""
    extra: dict[str, Any] = {"env": env}
    if shown is not None:
        extra["shown"] = shown
    if example is not None:
        extra["example"] = example
    return Field(default, validation_alias=env, description=description, json_schema_extra=extra, **constraints)


class Section(BaseModel):
    # Each section sees every variable and picks its own: extra names are the other sections'.
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)


def _blank_is_unset(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class Storage(Section):
    """Where state lives; everything defaults to `<project>/.local` (git-ignored)."""

    project_root: Path = setting("MLOPS_PROJECT_ROOT", "The project checkout (specs, suites, pool catalogue)",
                                 shown="the checkout this package is in, else the working directory")
    home: Path = setting("MLOPS_HOME", "Local state: SQLite MLflow store, data, audit log, locks, reports",
                         shown="`<project>/.local`")
    data_root: str = setting("MLOPS_DATA_ROOT", "Datasets, `{data_root}` in a spec's `dataset.uri` (a `gs://` "
                             "bucket in production)", shown="`$MLOPS_HOME/data`")
    artifact_root: str | None = setting(
        "MLOPS_ARTIFACT_ROOT", "Where each model's experiment stores artifacts (`<root>/<model>`); with a tracking "
        "server, not set means the server's own artifact store", None, shown="`$MLOPS_HOME/mlflow/artifacts` "
        "(not set, with a tracking server)")
    audit_root: str = setting("MLOPS_AUDIT_ROOT", "One JSON record per alias move", shown="`$MLOPS_HOME/audit`")
    lock_dir: Path = setting("MLOPS_LOCK_DIR", "The same-host promotion guard (across hosts the promotion pool "
                             "serialises)", shown="`$MLOPS_HOME/locks`")
    reports_dir: Path = setting("MLOPS_REPORTS_DIR", "Validation results and Data Docs", shown="`$MLOPS_HOME/reports`")
    models_dir: Path = setting("MLOPS_MODELS_DIR", "The model specs", shown="`<project>/include/models`")
    expectations_dir: Path = setting("MLOPS_EXPECTATIONS_DIR", "The data-quality suites",
                                     shown="`<project>/include/expectations`")
    compute_dir: Path = setting("MLOPS_COMPUTE_DIR", "The pool catalogue (`pools.yaml`)",
                                shown="`<project>/include/compute`")

    _unset = field_validator("artifact_root", mode="before")(_blank_is_unset)

    @property
    def artifact_location(self) -> str:
        """MLOPS_ARTIFACT_ROOT, else the local folder under the home."""
        return self.artifact_root or (self.home / "mlflow" / "artifacts").as_uri()


class Tracking(Section):
    """The MLflow tracking server and where people open it."""

    uri: str = setting("MLFLOW_TRACKING_URI", "MLflow's own variable: the tracking server or store",
                       shown="`sqlite:///$MLOPS_HOME/mlflow/mlflow.db`")
    ui_url: str = setting("MLOPS_MLFLOW_UI_URL", "Where people open MLflow (task links, fleet page)",
                          shown=f"the tracking URI if http(s), else `{LOCAL_MLFLOW_UI}`")
    conn_id: str = setting("MLOPS_MLFLOW_CONN_ID", "The Airflow connection with the tracking server and its "
                           "credentials", "mlops_mlflow")

    @field_validator("conn_id", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        return _blank_is_unset(value) or cls.model_fields["conn_id"].default


class Trainer(Section):
    """The trainer process (`python -m mlops.train`, in a pod or a local subprocess)."""

    packages: tuple[str, ...] = setting(
        "MLOPS_TRAINER_PACKAGES", "Comma-separated packages whose functions a spec's `trainer.function` / "
        "`trainer.predict` may name (a spec must not be able to call `os:system`)", ("trainers",),
        shown="`trainers`", example="trainers,acme_models")
    git_sha: str | None = setting("MLOPS_GIT_SHA", "The commit tagged on runs; not set: `git rev-parse HEAD`", None)
    image_digest: str = setting("MLOPS_IMAGE_DIGEST", "The trainer image's digest, tagged on runs", "local")
    result_path: str = setting("MLOPS_RESULT_PATH", "Where the trainer writes its result (the XCom sidecar reads "
                               "it)", "/airflow/xcom/return.json")
    termination_log: Path = setting("MLOPS_TERMINATION_LOG", "Where a failing trainer writes its reason for "
                                    "Kubernetes", Path("/dev/termination-log"), shown="`/dev/termination-log`")

    _unset = field_validator("git_sha", mode="before")(_blank_is_unset)

    @field_validator("packages", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        names = tuple(n.strip() for n in value.split(",") if n.strip())
        bad = [n for n in names if not n.replace("_", "a").replace(".", "a").isalnum() or n[0].isdigit()]
        if bad or not names:
            raise ValueError("give importable package names separated by commas")
        return names


class Compute(Section):
    """Which backend runs training."""

    backend: ComputeBackend | None = setting(
        "MLOPS_COMPUTE_BACKEND", "Overrides every spec's `compute.backend`: the same DAGs on a laptop and a cluster",
        None, shown="not set (each spec's own)", example="kubernetes")
    record_cost: bool = setting(
        "MLOPS_RECORD_COST", "Record each training run's usage and estimated cost on its MLflow run and version "
        "(prices from the pool catalogue)", True, example="false")

    _unset = field_validator("backend", mode="before")(_blank_is_unset)


class Kubernetes(Section):
    """Where and how training pods run; the same for every model (specs only pick a pool)."""

    namespace: str = setting("MLOPS_K8S_NAMESPACE", "The namespace of the training pods", "mlops")
    trainer_image: str = setting("MLOPS_TRAINER_IMAGE", "The trainer image (a spec's `trainer.image` wins)",
                                 "mlops-trainer:0.1.0")
    conn_id: str = setting("MLOPS_K8S_CONN_ID", "The Airflow connection to the cluster", "kubernetes_default")
    service_account: str | None = setting("MLOPS_K8S_SERVICE_ACCOUNT", "The training pods' service account",
                                          "mlops-trainer")
    tracking_secret: str = setting("MLOPS_TRACKING_SECRET", "The Secret with `MLFLOW_TRACKING_URI` (and "
                                   "credentials) the pods read by reference", "mlops-tracking")
    image_pull_policy: str = setting("MLOPS_IMAGE_PULL_POLICY", "The trainer image's pull policy", "IfNotPresent")


class Gke(Section):
    """The GKE cluster of the `gke` backend."""

    gcp_conn_id: str = setting("MLOPS_GCP_CONN_ID", "The Airflow connection to Google Cloud", "google_cloud_default")
    project: str | None = setting("MLOPS_GKE_PROJECT", "The cluster's project (required by the `gke` backend)", None)
    location: str | None = setting("MLOPS_GKE_LOCATION", "The cluster's region or zone (required by `gke`)", None)
    cluster: str | None = setting("MLOPS_GKE_CLUSTER", "The cluster's name (required by `gke`)", None)


class Pods(Section):
    """Training pods' time limits, storage and clean-up."""

    schedule_timeout_s: int = setting("MLOPS_POD_SCHEDULE_TIMEOUT_S", "Seconds to wait for a node (GPU "
                                      "autoscaling is slow)", 1800, example="1800", ge=1)
    startup_timeout_s: int = setting("MLOPS_POD_STARTUP_TIMEOUT_S", "Seconds to pull the image and start the "
                                     "container once scheduled", 600, example="600", ge=1)
    data_root: str | None = setting("MLOPS_POD_DATA_ROOT", "Where pods find data when that differs from what "
                                    "workers see", None, shown="not set (`MLOPS_DATA_ROOT`)")
    artifact_root: str | None = setting("MLOPS_POD_ARTIFACT_ROOT", "Where pods put artifacts when that differs",
                                        None, shown="not set (the tracking server's artifact store)")
    keep_failed_pods: bool = setting("MLOPS_KEEP_FAILED_PODS", "Keep failed pods for `kubectl describe` (the "
                                     "maintenance DAG removes them once their task is over)", False)


class AirflowApi(Section):
    """Airflow's REST API, used by the maintenance DAG."""

    conn_id: str = setting("MLOPS_AIRFLOW_API_CONN_ID", "The Airflow connection to its own API server",
                           "mlops_airflow_api")


class Dags(Section):
    """How the DAG files generate the models' DAGs."""

    shards: int = setting("MLOPS_DAG_SHARDS", "How many DAG files share the models (the dag-processor parses "
                          "them in parallel)", 1, example="4", ge=1)


class Serving(Section):
    """Online serving: where the local backend keeps its server processes, and the image clusters run."""

    dir: Path = setting("MLOPS_SERVING_DIR", "The local serving supervisor's state, logs and downloaded model "
                        "versions", shown="`$MLOPS_HOME/serving`")
    host: str = setting("MLOPS_SERVING_HOST", "Address the local backend's endpoints listen on", "127.0.0.1")
    service_account: str = setting("MLOPS_SERVING_SERVICE_ACCOUNT", "The model server pods' service account "
                                   "(kubernetes backend; reads the model artifacts, no API access)", "mlops-serving")
    kserve_artifact_root: str | None = setting(
        "MLOPS_KSERVE_ARTIFACT_ROOT", "Where the tracking server keeps proxied artifacts (its --artifacts-destination, "
        "e.g. gs://bucket/mlflow): KServe's storage initializer reads a version there, as it cannot read "
        "mlflow-artifacts:/ URIs", None, shown="not set (the versions' own artifact URIs)")
    kserve_runtime: str = setting("MLOPS_KSERVE_RUNTIME", "The ClusterServingRuntime of the kserve backend "
                                  "(deploy/kserve/runtime.yaml)", "mlops-mlflow")
    image: str = setting("MLOPS_SERVING_IMAGE", "The model server image for the kubernetes and kserve backends "
                         "(the Dockerfile's `serving` target)", "mlops-serving:latest")


class Tuning(Section):
    """Where hyperparameter sweeps keep their studies (Optuna's RDB storage; never Airflow's metadata DB)."""

    storage_url: str = setting(
        "MLOPS_TUNING_STORAGE", "The studies' database as a SQLAlchemy URL, when no Airflow connection is named",
        shown="`sqlite:///$MLOPS_HOME/tuning/studies.db`", example="postgresql://optuna@db:5432/optuna")
    conn_id: str | None = setting(
        "MLOPS_TUNING_CONN_ID", "An Airflow connection (postgres) with the studies' database; wins over "
        "MLOPS_TUNING_STORAGE", None, shown="not set", example="mlops_optuna")
    warm_runner: bool = setting(
        "MLOPS_TUNING_WARM_RUNNER", "Run local trials in forks of a warm runner process (libraries imported once per "
        "machine) instead of a new Python each; false: a subprocess per trial, as training", True, example="false")

    _unset = field_validator("conn_id", mode="before")(_blank_is_unset)


SECTIONS: dict[str, type[Section]] = {
    "storage": Storage, "tracking": Tracking, "trainer": Trainer, "compute": Compute, "kubernetes": Kubernetes,
    "gke": Gke, "pods": Pods, "airflow_api": AirflowApi, "dags": Dags, "serving": Serving, "tuning": Tuning}


def variables() -> dict[str, tuple[str, str]]:
    """Every variable the settings read -> (section, field)."""
    return {str(info.validation_alias): (section, name)
            for section, model in SECTIONS.items() for name, info in model.model_fields.items()}


VARIABLES = variables()


def _default_project_root() -> Path:
    candidate = Path(__file__).resolve().parents[3]
    if (candidate / "include" / "models").is_dir():
        return candidate
    return Path.cwd().resolve()


def _derive(env: Mapping[str, Any]) -> dict[str, Any]:
    """The variables given, plus the defaults that depend on other values."""
    out = dict(env)
    root = Path(out["MLOPS_PROJECT_ROOT"]).resolve() if out.get("MLOPS_PROJECT_ROOT") else _default_project_root()
    home = Path(out.get("MLOPS_HOME", root / ".local")).resolve()
    include = root / "include"
    out["MLOPS_PROJECT_ROOT"], out["MLOPS_HOME"] = root, home
    for name, default in (("MLOPS_DATA_ROOT", str(home / "data")), ("MLOPS_AUDIT_ROOT", str(home / "audit")),
                          ("MLOPS_LOCK_DIR", home / "locks"), ("MLOPS_REPORTS_DIR", home / "reports"),
                          ("MLOPS_MODELS_DIR", include / "models"),
                          ("MLOPS_EXPECTATIONS_DIR", include / "expectations"),
                          ("MLOPS_COMPUTE_DIR", include / "compute"), ("MLOPS_SERVING_DIR", home / "serving"),
                          ("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"),
                          ("MLOPS_TUNING_STORAGE", f"sqlite:///{home / 'tuning' / 'studies.db'}")):
        out.setdefault(name, default)
    explicit = str(out.get("MLOPS_MLFLOW_UI_URL", "")).strip()
    uri = str(out["MLFLOW_TRACKING_URI"])
    if explicit:
        out["MLOPS_MLFLOW_UI_URL"] = explicit.rstrip("/")
    elif uri.startswith(("http://", "https://")):
        out["MLOPS_MLFLOW_UI_URL"] = uri.rstrip("/")
    else:
        out["MLOPS_MLFLOW_UI_URL"] = LOCAL_MLFLOW_UI
    return out


class _EnvironmentSource(PydanticBaseSettingsSource):
    """The declared variables that are set in `os.environ`, by their own names."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {"environ": environ_subset(_environ.get())}


# What the environment source reads: the process environment, or the mapping `load` was given.
_environ: ContextVar[Mapping[str, str] | None] = ContextVar("mlops_settings_environ", default=None)


def environ_subset(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The declared variables set in `environ` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in VARIABLES if name in environ}


def read(environ: Mapping[str, str] | None = None) -> PlatformSettings:
    token = _environ.set(environ)
    try:
        return PlatformSettings()
    finally:
        _environ.reset(token)


class PlatformSettings(BaseSettings):
    """The platform's settings, read from the environment so a pod and a laptop agree."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    storage: Storage
    tracking: Tracking
    trainer: Trainer
    compute: Compute
    kubernetes: Kubernetes
    gke: Gke
    pods: Pods
    airflow_api: AirflowApi
    dags: Dags
    serving: Serving
    tuning: Tuning

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[
                                       PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvironmentSource(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        # `environ` holds the variables by name, as the environment source found them; each section picks its own.
        if isinstance(data, Mapping) and "environ" in data:
            env = _derive(data["environ"])
            return {**{name: env for name in SECTIONS}, **{k: v for k, v in data.items() if k != "environ"}}
        return data

    # Flat names callers have always used; the sections above are where each value is declared.
    @property
    def project_root(self) -> Path:
        return self.storage.project_root

    @property
    def home(self) -> Path:
        return self.storage.home

    @property
    def data_root(self) -> str:
        return self.storage.data_root

    @property
    def artifact_root(self) -> str:
        return self.storage.artifact_location

    @property
    def audit_root(self) -> str:
        return self.storage.audit_root

    @property
    def lock_dir(self) -> Path:
        return self.storage.lock_dir

    @property
    def reports_dir(self) -> Path:
        return self.storage.reports_dir

    @property
    def models_dir(self) -> Path:
        return self.storage.models_dir

    @property
    def expectations_dir(self) -> Path:
        return self.storage.expectations_dir

    @property
    def compute_dir(self) -> Path:
        return self.storage.compute_dir

    @property
    def tracking_uri(self) -> str:
        return self.tracking.uri

    @property
    def mlflow_ui_url(self) -> str:
        return self.tracking.ui_url

    @property
    def trainer_packages(self) -> tuple[str, ...]:
        return self.trainer.packages

    @property
    def cluster(self) -> ClusterSettings:
        return ClusterSettings(self.kubernetes, self.gke, self.pods)


class ClusterSettings:
    """Where and how training pods run, under the flat names the pod code uses."""

    __slots__ = ("kubernetes", "gke", "pods")

    def __init__(self, kubernetes: Kubernetes, gke: Gke, pods: Pods) -> None:
        self.kubernetes, self.gke, self.pods = kubernetes, gke, pods

    @classmethod
    def from_env(cls) -> ClusterSettings:
        from mlops.settings import get_settings

        return get_settings().cluster

    @property
    def namespace(self) -> str:
        return self.kubernetes.namespace

    @property
    def trainer_image(self) -> str:
        return self.kubernetes.trainer_image

    @property
    def kubernetes_conn_id(self) -> str:
        return self.kubernetes.conn_id

    @property
    def service_account(self) -> str | None:
        return self.kubernetes.service_account

    @property
    def tracking_secret(self) -> str:
        return self.kubernetes.tracking_secret

    @property
    def image_pull_policy(self) -> str:
        return self.kubernetes.image_pull_policy

    @property
    def gcp_conn_id(self) -> str:
        return self.gke.gcp_conn_id

    @property
    def gke_project(self) -> str | None:
        return self.gke.project

    @property
    def gke_location(self) -> str | None:
        return self.gke.location

    @property
    def gke_cluster(self) -> str | None:
        return self.gke.cluster

    @property
    def schedule_timeout_s(self) -> int:
        return self.pods.schedule_timeout_s

    @property
    def startup_timeout_s(self) -> int:
        return self.pods.startup_timeout_s

    @property
    def pod_data_root(self) -> str | None:
        return self.pods.data_root

    @property
    def pod_artifact_root(self) -> str | None:
        return self.pods.artifact_root

    @property
    def keep_failed_pods(self) -> bool:
        return self.pods.keep_failed_pods
