"""Platform settings: where state lives. Read from the environment so a pod and a laptop agree.

Defaults put everything under `<project>/.local` (git-ignored): SQLite MLflow store, data, audit log,
locks and validation reports. Production points the same variables at a tracking server and buckets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _project_root() -> Path:
    explicit = os.environ.get("MLOPS_PROJECT_ROOT")
    if explicit:
        return Path(explicit).resolve()
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "include" / "models").is_dir():
        return candidate
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Settings:
    project_root: Path
    home: Path
    data_root: str
    tracking_uri: str
    artifact_root: str
    audit_root: str
    lock_dir: Path
    reports_dir: Path
    models_dir: Path
    expectations_dir: Path
    compute_dir: Path
    # Where people open MLflow in a browser (links from Airflow and the fleet page); the tracking URI
    # when that is a server, else a local `mlflow ui`.
    mlflow_ui_url: str = "http://localhost:5000"
    # The packages a spec's trainer.function / trainer.predict may name: a spec is data anyone with write
    # access to the specs folder can change, so it must not be able to call `os:system`.
    trainer_packages: tuple[str, ...] = ("trainers",)

    @classmethod
    def from_env(cls) -> "Settings":
        root = _project_root()
        home = Path(os.environ.get("MLOPS_HOME", root / ".local")).resolve()
        include = root / "include"
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
        return cls(
            project_root=root,
            home=home,
            data_root=os.environ.get("MLOPS_DATA_ROOT", str(home / "data")),
            tracking_uri=tracking_uri,
            artifact_root=os.environ.get("MLOPS_ARTIFACT_ROOT", (home / "mlflow" / "artifacts").as_uri()),
            audit_root=os.environ.get("MLOPS_AUDIT_ROOT", str(home / "audit")),
            lock_dir=Path(os.environ.get("MLOPS_LOCK_DIR", home / "locks")),
            reports_dir=Path(os.environ.get("MLOPS_REPORTS_DIR", home / "reports")),
            models_dir=Path(os.environ.get("MLOPS_MODELS_DIR", include / "models")),
            expectations_dir=Path(os.environ.get("MLOPS_EXPECTATIONS_DIR", include / "expectations")),
            compute_dir=Path(os.environ.get("MLOPS_COMPUTE_DIR", include / "compute")),
            mlflow_ui_url=mlflow_ui_url(tracking_uri),
            trainer_packages=trainer_packages(),
        )


def mlflow_ui_url(tracking_uri: str) -> str:
    """`MLOPS_MLFLOW_UI_URL`, else the tracking URI when it is an http(s) server, else a local `mlflow ui`."""
    explicit = os.environ.get("MLOPS_MLFLOW_UI_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return "http://localhost:5000"


def trainer_packages() -> tuple[str, ...]:
    """`MLOPS_TRAINER_PACKAGES`: comma-separated top-level packages whose modules specs may name."""
    raw = os.environ.get("MLOPS_TRAINER_PACKAGES", "trainers")
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    bad = [n for n in names if not n.replace("_", "a").replace(".", "a").isalnum() or n[0].isdigit()]
    if bad or not names:
        raise ValueError(f"MLOPS_TRAINER_PACKAGES={raw!r}: give importable package names separated by commas, "
                         "e.g. 'trainers,acme_models'")
    return names


def get_settings() -> Settings:
    """Fresh on every call: tests and subprocesses change the environment between calls."""
    return Settings.from_env()


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how training pods run; the same for every model (specs only pick a pool)."""

    namespace: str
    trainer_image: str
    kubernetes_conn_id: str
    gcp_conn_id: str
    gke_project: str | None
    gke_location: str | None
    gke_cluster: str | None
    service_account: str | None
    tracking_secret: str  # Kubernetes Secret with MLFLOW_TRACKING_URI (+ optional credentials)
    image_pull_policy: str
    schedule_timeout_s: int  # waiting for a node (GPU autoscaling is slow)
    startup_timeout_s: int  # pulling the image and starting the container once scheduled
    # Where pods find data and put artifacts when that differs from what workers see (None: the same,
    # resp. the tracking server's own artifact store).
    pod_data_root: str | None = None
    pod_artifact_root: str | None = None
    # Failed pods are deleted once their reason and last log lines are in the task log; keep them to
    # debug with kubectl (the maintenance DAG removes them once their task is over).
    keep_failed_pods: bool = False

    @classmethod
    def from_env(cls) -> "ClusterSettings":
        env = os.environ.get
        return cls(
            namespace=env("MLOPS_K8S_NAMESPACE", "mlops"),
            trainer_image=env("MLOPS_TRAINER_IMAGE", "mlops-trainer:0.1.0"),
            kubernetes_conn_id=env("MLOPS_K8S_CONN_ID", "kubernetes_default"),
            gcp_conn_id=env("MLOPS_GCP_CONN_ID", "google_cloud_default"),
            gke_project=env("MLOPS_GKE_PROJECT"),
            gke_location=env("MLOPS_GKE_LOCATION"),
            gke_cluster=env("MLOPS_GKE_CLUSTER"),
            service_account=env("MLOPS_K8S_SERVICE_ACCOUNT", "mlops-trainer"),
            tracking_secret=env("MLOPS_TRACKING_SECRET", "mlops-tracking"),
            image_pull_policy=env("MLOPS_IMAGE_PULL_POLICY", "IfNotPresent"),
            schedule_timeout_s=int(env("MLOPS_POD_SCHEDULE_TIMEOUT_S", "1800")),
            startup_timeout_s=int(env("MLOPS_POD_STARTUP_TIMEOUT_S", "600")),
            pod_data_root=env("MLOPS_POD_DATA_ROOT"),
            pod_artifact_root=env("MLOPS_POD_ARTIFACT_ROOT"),
            keep_failed_pods=env("MLOPS_KEEP_FAILED_PODS", "false").strip().lower() in ("1", "true", "yes"),
        )
