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

    @classmethod
    def from_env(cls) -> "Settings":
        root = _project_root()
        home = Path(os.environ.get("MLOPS_HOME", root / ".local")).resolve()
        include = root / "include"
        return cls(
            project_root=root,
            home=home,
            data_root=os.environ.get("MLOPS_DATA_ROOT", str(home / "data")),
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"),
            artifact_root=os.environ.get("MLOPS_ARTIFACT_ROOT", (home / "mlflow" / "artifacts").as_uri()),
            audit_root=os.environ.get("MLOPS_AUDIT_ROOT", str(home / "audit")),
            lock_dir=Path(os.environ.get("MLOPS_LOCK_DIR", home / "locks")),
            reports_dir=Path(os.environ.get("MLOPS_REPORTS_DIR", home / "reports")),
            models_dir=Path(os.environ.get("MLOPS_MODELS_DIR", include / "models")),
            expectations_dir=Path(os.environ.get("MLOPS_EXPECTATIONS_DIR", include / "expectations")),
            compute_dir=Path(os.environ.get("MLOPS_COMPUTE_DIR", include / "compute")),
        )


def get_settings() -> Settings:
    """Fresh on every call: tests and subprocesses change the environment between calls."""
    return Settings.from_env()
