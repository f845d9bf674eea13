"""What every run of the trainer process shares, a training run or a sweep's trial: where it comes from in
Airflow, the window it reads (the one validation checked), the tags it carries and the keys of its cache."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import __version__
from mlops.settings import Settings
from mlops.spec import ModelSpec

if TYPE_CHECKING:
    from mlops.data import WindowData


@dataclass(frozen=True)
class RunContext:
    """Where a training run comes from in Airflow; all of it ends up as tags."""

    dag_id: str = "manual"
    run_id: str = "manual"
    logical_date: str | None = None
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    try_number: int = 1
    # Set when validation already fixed the window: train exactly what was validated.
    window_last_day: str | None = None
    window_anchor: str | None = None
    expected_fingerprint: str | None = None
    # Set when a sweep chose the parameters: its study, MLflow run and best trial, tagged on run and version.
    sweep: dict[str, str] | None = None


class DataChangedError(RuntimeError):
    """The window's content differs from what validation checked."""


def platform_sources() -> list[Path]:
    """The platform's own modules that shape a trained model or a trial (loading, splitting, scoring, trials)."""
    here = Path(__file__).parent
    return sorted([*here.glob("*.py"), *(here / "tuning").glob("*.py")])


def code_version(spec: ModelSpec) -> str:
    """Changes when anything that shapes the model changes, committed or not: the platform's own code
    (loading, splitting, scoring), the author's module(s) and the versions of the libraries they run on."""
    from mlops.authoring import resolve, source_of

    for ref in (spec.trainer.function, spec.trainer.predict):
        if ref:
            resolve(ref)  # a typo fails here with the fix, before any hashing
    h = hashlib.sha256(__version__.encode())
    for path in platform_sources():
        h.update(path.read_bytes())
    h.update(source_of(spec.trainer.function).encode())
    h.update(source_of(spec.trainer.predict).encode())
    h.update("\n".join(requirements()).encode())
    return h.hexdigest()[:16]


def git_sha(settings: Settings) -> str:
    if settings.trainer.git_sha:
        return settings.trainer.git_sha
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.project_root, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def effective_params(spec: ModelSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(spec.trainer.hyperparameters))
    if unknown:
        raise ValueError(
            f"{spec.name}: unknown hyperparameter override(s) {unknown}; the spec declares "
            f"{sorted(spec.trainer.hyperparameters)} (add new ones to trainer.hyperparameters first)"
        )
    return {**spec.trainer.hyperparameters, **overrides, "seed": spec.trainer.seed}


def cache_key(fingerprint: str, spec_hash: str, code: str, params: dict[str, Any]) -> str:
    payload = json.dumps([fingerprint, spec_hash, code, params], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def load_validated(spec: ModelSpec, ctx: RunContext, settings: Settings) -> tuple[WindowData, str]:
    """The run's window (the one validation fixed, when it did) and its fingerprint; DataChangedError when the
    content is not what validation checked."""
    from mlops import data

    if ctx.window_last_day:
        window = data.WindowRange.ending(date.fromisoformat(ctx.window_last_day), spec.dataset.window.days,
                                         ctx.window_anchor or "given")
    else:
        window = data.resolve_window(spec, settings.data_root, _parse_time(ctx.data_interval_end))
    loaded = data.load_window(spec, settings.data_root, window)
    fingerprint = data.fingerprint(loaded.frame[spec.dataset.columns])
    if ctx.expected_fingerprint and fingerprint != ctx.expected_fingerprint:
        raise DataChangedError(
            f"{spec.name}: the data of window {window.first_day}..{window.last_day} changed after validation "
            f"(fingerprint {ctx.expected_fingerprint} validated, {fingerprint} now); re-run the DAG run so the "
            "new data is validated first"
        )
    return loaded, fingerprint


def run_tags(spec: ModelSpec, ctx: RunContext, loaded: WindowData, fingerprint: str, spec_hash: str, code: str,
             settings: Settings) -> dict[str, str]:
    """Where a run comes from and what it read: the tags every training and trial run carries."""
    from mlops import tracking

    window = loaded.window
    return {
        tracking.MODEL: spec.name,
        tracking.DAG_ID: ctx.dag_id,
        tracking.RUN_ID: ctx.run_id,
        tracking.LOGICAL_DATE: ctx.logical_date or "",
        tracking.TRY_NUMBER: str(ctx.try_number),
        tracking.AIRFLOW_INTERVAL_START: ctx.data_interval_start or "",
        tracking.AIRFLOW_INTERVAL_END: ctx.data_interval_end or "",
        tracking.INTERVAL_START: window.start.isoformat(),
        tracking.INTERVAL_END: window.end.isoformat(),
        tracking.WINDOW_FIRST: window.first_day.isoformat(),
        tracking.WINDOW_LAST: window.last_day.isoformat(),
        tracking.WINDOW_ANCHOR: window.anchored_by,
        tracking.FINGERPRINT: fingerprint,
        tracking.SPEC_HASH: spec_hash,
        tracking.CODE_VERSION: code,
        tracking.GIT_SHA: git_sha(settings),
        tracking.IMAGE_DIGEST: settings.trainer.image_digest,
    }


def sweep_tags(ctx: RunContext) -> dict[str, str]:
    """The sweep that chose this run's parameters, when one did."""
    from mlops import tracking

    if not ctx.sweep:
        return {}
    names = {"study": tracking.SWEEP_STUDY, "run_id": tracking.SWEEP_RUN, "best_trial": tracking.SWEEP_BEST_TRIAL,
             "best_run_id": tracking.SWEEP_BEST_RUN}
    return {tag: str(ctx.sweep[key]) for key, tag in names.items() if ctx.sweep.get(key) is not None}


def requirements() -> list[str]:
    """Pinned from what is installed, so MLflow does not spend seconds inferring them."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("mlflow", "scikit-learn", "pandas", "numpy", "cloudpickle"):
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            pass
    return out
